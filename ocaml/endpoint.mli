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

    Semantics are those of ocaml-vchan and of [Vchan_rs_lwt_unix.Endpoint]:
    - {b server} shares a page (and the rings' pages when a ring is larger
      than 2 KiB), publishes the page's grant and an event channel with
      [C.write], and resolves once the client connected. [read_size] and
      [write_size] default to 1024 bytes, as in ocaml-vchan (at most 1 MiB).
      If a step fails ([M.share], [E.listen], [C.write] raising, a client
      breaking the protocol), what was acquired
      is given back (rendezvous deleted, pages unshared, channel closed)
      and the promise fails with the first error;
    - {b client} reads the rendezvous with [C.read], maps the page and
      validates it (orders and grant refs are read once), maps the left
      ring writable and the right ring read-only, and announces itself;
    - {b read} returns a view into the read ring itself, never across the
      ring's end, valid until the next read, which acknowledges it. Copy
      what you keep. [`Eof] comes once the peer closed and every byte it
      wrote before closing was read; after {!S.FLOW.close} or
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

(** A spin phase: before an operation that found the ring empty (or full)
    asks the peer for a notification and waits with [E.recv], it may watch
    the ring for a while (a peer on another core is met without events). *)
module type SPIN = sig
  type t
  (** One endpoint's spin state. *)

  val create : unit -> t
  (** A fresh state. *)

  val spin : t -> (unit -> bool) -> bool
  (** [spin t ready] polls [ready] for a bounded while: true once it held,
      false if the budget ran out (the endpoint then waits). *)

  val woke : t -> unit
  (** Called when a wait that followed a failed spin ended. *)
end

(** [Make_with (W) (E) (M) (C)] is [Make (E) (M) (C)] with the spin phase
    [W]. *)
module Make_with (W : SPIN) (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) :
  S.ENDPOINT
    with type port = Port.t
     and type error = Error.t
     and type write_error = Error.t

(** [Make (E) (M) (C)] is an endpoint over event channels [E], shared
    memory [M] and rendezvous store [C]. *)
module Make (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) :
  S.ENDPOINT
    with type port = Port.t
     and type error = Error.t
     and type write_error = Error.t
