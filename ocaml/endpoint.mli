(** [Vchan_rs.Endpoint]: vchan endpoints over any event channels, shared
    memory and rendezvous store — Mirage's, under Xen or Solo5 — as
    ocaml-vchan's [Vchan.Endpoint].

    The rings are the Rust core's (the freestanding archive, the same code
    as every other vchan-rs endpoint), working directly in the pages [M]
    shares or maps: there is no second ring implementation in OCaml. After
    each operation the core says whether the peer asked to be told; then the
    endpoint calls [E.send]. An operation that must wait (for data, for
    room, for the client to connect) asks the peer for a notification,
    looks again, and waits with [E.recv].

    Semantics are those of ocaml-vchan ([Vchan_rs_lwt_unix.Endpoint] is
    this functor applied to Lwt Unix modules, see {!Make_with}):
    - {b server} allocates an event channel, shares a page (and the rings'
      pages when a ring is larger than 2 KiB), publishes the page's grant
      and the channel with [C.write], and resolves once the client
      connected (Xen's [init.c] order). [read_size] and
      [write_size] default to 1024 bytes, as in ocaml-vchan (at most 1 MiB).
      If a step fails ([M.share], [E.listen], [C.write] raising, a client
      breaking the protocol), what was acquired
      is given back (rendezvous deleted, pages unshared, channel closed)
      and the promise fails with the first error;
    - {b client} reads the rendezvous with [C.read], connects the event
      channel, maps the page and validates it (orders and grant refs are
      read once), maps the left ring writable and the right ring
      read-only, and announces itself. A rendezvous whose server exited
      (one a killed server left behind) fails with {!Stale}, found by a
      look at the page before the event channel is bound (a new server
      may already own that port number);
    - {b read} returns a view into the read ring itself, never across the
      ring's end, valid until the next read, which acknowledges it. Copy
      what you keep. [`Eof] comes once the peer closed and every byte it
      wrote before closing was read; after [close] or
      [shutdown `read], reads give [`Eof];
    - {b write} copies all of the buffer, waiting for room; [Error `Closed]
      once we or the peer closed;
    - {b close} acknowledges the view [read] returned last (so a peer
      that waits for its bytes to be read sees them read), marks us
      exited, signals the peer, then (server)
      [C.delete]s the rendezvous and unshares, or (client) unmaps, and
      closes the event channel. Idempotent. [shutdown] with [`write] or
      [`read_write] is [close]; a vchan has no half-close.

    One Lwt thread may read while another writes; two concurrent readers (or
    writers) of one endpoint are not supported. *)

(** The peer's state, as [state] reports it. *)
type state =
  | Waiting  (** The client has not connected yet (server only). *)
  | Connected  (** Both ends are connected. *)
  | Exited  (** The peer closed or died, or we closed. *)

exception Stale
(** A client found a rendezvous whose server has exited (a killed server
    leaves its rendezvous behind): wait for the server to publish a new
    one, then connect again. *)

(** An endpoint: ocaml-vchan's [ENDPOINT] and the extras every platform
    gets. *)
module type S = sig
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

(** What a platform may add to its event channels, memory and store
    ({!Make} supplies nothing of it). *)
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

(** [Make_with (P)] is an endpoint over [P]'s event channels, memory and
    store, with its unmap notification, death reports and spin phase. *)
module Make_with (P : PLATFORM) : S

(** [Make (E) (M) (C)] is an endpoint over event channels [E], shared
    memory [M] and rendezvous store [C], as ocaml-vchan's: [Make_with]
    with no unmap notification, no death reports and no spin. *)
module Make (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) : S
