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

type state =
  | Waiting  (** The client has not connected yet (server only). *)
  | Connected  (** Both ends are connected. *)
  | Exited  (** The peer closed or died, or we closed. *)
(** The peer's state, as [state] reports it. *)

exception Stale
(** A client found a rendezvous whose server has exited (a killed server
    leaves its rendezvous behind): wait for the server to publish a new
    one, then connect again. *)

module type S = Endpoint_intf.S with type state := state
(** An endpoint: ocaml-vchan's [ENDPOINT] and the extras every platform
    gets. *)

module type PLATFORM = Endpoint_intf.PLATFORM
(** What a platform may add to its event channels, memory and store
    ({!Make} supplies nothing of it). *)

(** [Make_with (P)] is an endpoint over [P]'s event channels, memory and
    store, with its unmap notification, death reports and spin phase. *)
module Make_with (P : PLATFORM) : S

(** [Make (E) (M) (C)] is an endpoint over event channels [E], shared
    memory [M] and rendezvous store [C], as ocaml-vchan's: [Make_with]
    with no unmap notification, no death reports and no spin. *)
module Make (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) : S
