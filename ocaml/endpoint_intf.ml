(* The endpoint's module types, said once: endpoint.ml and endpoint.mli
   both take them from here (and endpoint.mli documents them). *)

module type S = sig
  type state
  (** The peer's state (substituted by {!Endpoint.state}). *)

  include
    S.ENDPOINT
      with type port = Port.t
       and type error = Error.t
       and type write_error = Error.t

  val listen :
    domid:int -> port:port -> ?read_size:int -> ?write_size:int -> unit -> t Lwt.t
  (** [listen ~domid ~port ()] is the first half of [server]: it resolves
      once the rendezvous is published, before the client connected (see
      {!accept}). *)

  val accept : t -> unit Lwt.t
  (** [accept t] resolves once the client of server [t] connected (or came
      and went). Immediate for a client. *)

  val is_server : t -> bool
  (** Did [listen] (or [server]) make [t]? *)

  val state : t -> state
  (** The peer's state. A peer the platform saw die is [Exited]. *)

  val peer_vanished : t -> bool
  (** Did the peer go away without closing the vchan (the platform saw it
      die: see {!PLATFORM.peer_gone})? Its state is then [Exited] and
      [read] gives what it wrote, then [`Eof], as after a close. *)

  val data_ready : t -> int
  (** Bytes readable now without waiting, not counting the view [read]
      returned last (0 once closed). *)

  val buffer_space : t -> int
  (** Bytes writable now without waiting (0 once closed). *)

  val read_into : t -> Cstruct.t -> (int S.or_eof, error) result Lwt.t
  (** [read_into t buf] copies up to [Cstruct.length buf] readable bytes
      into [buf], waiting until at least one is readable: [`Data n] with
      [n > 0] ([0] only for an empty [buf]). A view [read] returned is
      consumed first. *)

  val send : t -> Cstruct.t -> (unit, write_error) result Lwt.t
  (** [send t pkt] writes all of [pkt] at once, waiting until the ring has
      room for all of it: the reader never sees part of it. A packet
      larger than the write ring fails with [`Invalid_argument]. *)

  val recv : t -> Cstruct.t -> (unit S.or_eof, error) result Lwt.t
  (** [recv t buf] fills all of [buf] at once, waiting until that much is
      readable. *)

  val fill : t -> (Cstruct.t -> int) -> (int, write_error) result Lwt.t
  (** [fill t f] waits until half of the write ring is free, then calls
      [f] once with the contiguous free bytes at the write position (a
      view into the shared ring: the peer sees what [f] writes there, so
      write only data) and publishes the first [n] of them, [n] being
      what [f] returns when positive (at most the view's length). The
      result is [f]'s, or [Error `Closed] once we or the peer closed. *)

  val linger : t -> (unit, write_error) result Lwt.t
  (** [linger t] resolves once the peer has read every byte written so
      far. [Error `Closed] if we closed, or the peer closed or died with
      some of it unread. *)
end

module type PLATFORM = sig
  module E : S.EVENTS
  (** Event channels. *)

  module M : S.MEMORY
  (** Shared memory. *)

  module C : S.CONFIGURATION
  (** The rendezvous store. *)

  val share_page : E.channel -> domid:int -> own_live:int -> M.share
  (** [share_page channel ~domid ~own_live] shares the server's control
      page (one page) with [domid]. A platform that can should make our
      death clear the byte at [own_live] and signal [channel] (Xen's
      unmap notification). *)

  val map_page : E.channel -> domid:int -> grant:M.grant -> own_live:int -> M.mapping
  (** [map_page channel ~domid ~grant ~own_live]: the client's mapping of
      the control page, likewise. *)

  val peer_gone : E.channel -> bool
  (** Has the platform seen the peer die (its process or domain)? The
      endpoint then marks the peer exited in the page, as Xen's unmap
      notification does. Asked after every wait. *)

  type spin
  (** One endpoint's spin state. *)

  val spin : unit -> spin
  (** A fresh spin state. *)

  val spin_until : spin -> (unit -> bool) -> bool
  (** [spin_until s ready]: before an operation that found the ring empty
      (or full) asks the peer for a notification and waits with [E.recv],
      it calls [ready] for a bounded while (each call looks at the ring 32
      times, with a spin-loop hint between looks): true once it held,
      false when the budget ran out. A platform without a second core to
      wait for returns [false] at once. *)

  val woke : spin -> unit
  (** Called when a wait that followed a failed spin ended. *)

  val stalled : E.channel -> unit
  (** An operation woke from a wait and must wait again: the wake-up
      brought it nothing. A platform that lets events pile up unconsumed
      (to save a system call per wake-up) should consume them now: the
      peer's death, a new client or a flood of empty notifications may sit
      behind them. *)
end
