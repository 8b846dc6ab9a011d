(** Vchan endpoints for Lwt on Unix: {!Vchan_rs.Endpoint.Make_with}
    applied to Lwt event channels, memory and rendezvous over the Rust
    backends (unix, xen), as ocaml-vchan's Unix library is its functor
    applied to Unix modules.

    An endpoint is one end of a vchan: two byte rings in memory shared
    between a {e server} (which allocates the memory) and a {e client}
    (which maps it). This module has the shape of ocaml-vchan's
    [Vchan.S.ENDPOINT] (see {!Vchan_rs.S.ENDPOINT}) plus extras: explicit backends,
    a non-waiting [listen], connection timeouts, the peer's state, and packet
    I/O.

    {b Never blocking.} Every operation is non-blocking underneath; when it
    must wait (for data, for room, for the peer), it waits through Lwt's
    engine on the endpoint's event descriptor, so the Lwt scheduler never
    blocks (before waiting it spins on the ring for an adaptive 2-100 us,
    so a busy peer is met with no event at all). Under Lwt's default engine a wake-up consumes the events (one
    more system call); under {!Engine} ([Vchan_rs_lwt_unix.Engine.install
    ()]) the descriptor of a unix-backend endpoint is watched
    edge-triggered and a wake-up costs the engine's [epoll_wait] alone (see
    {!Engine}). One Lwt thread may read while another writes;
    two concurrent readers (or two concurrent writers) of one endpoint are
    not supported.

    {b Zero-copy reads.} {!read} returns a view into the read ring itself,
    valid until the next read of any kind on the endpoint, which
    acknowledges (consumes) it, exactly as ocaml-vchan does. Copy what you
    need to keep. A client's read ring is mapped read-only: never write
    into a buffer returned by {!read}. A view stays mapped (it never
    dangles) as long as it is reachable, even after {!close}. *)

type t
(** An endpoint. *)

type flow = t
(** The same endpoint, under the name [Mirage_flow.S] uses. *)

type port = Vchan_rs.Port.t
(** Port names ({!Vchan_rs.Port}). *)

type error = Vchan_rs.Error.t
(** Read errors: [`Protocol] (the peer broke the protocol) or [`System]. *)

val pp_error : Format.formatter -> error -> unit
(** [pp_error] prints a read error, as {!Vchan_rs.Error.pp}. *)

type write_error = Vchan_rs.Error.t
(** Write errors: [`Closed] once we or the peer closed, else as {!error}
    ([`Invalid_argument] for a packet larger than the ring). *)

val pp_write_error : Format.formatter -> write_error -> unit
(** [pp_write_error] prints a write error, as {!Vchan_rs.Error.pp}. *)

(** {1 Connecting} *)

val server :
  domid:int ->
  port:port ->
  ?read_size:int ->
  ?write_size:int ->
  unit ->
  t Lwt.t
(** [server ~domid ~port ?read_size ?write_size ()] is {!listen} with the
    default backend, then {!accept}: it resolves once client domain [domid]
    connected. Ring sizes default to 65536 bytes. Fails with
    {!Vchan_rs.Error.Vchan}. *)

val client : domid:int -> port:port -> unit -> t Lwt.t
(** [client ~domid ~port ()] is {!connect} with the default backend and no
    timeout. *)

val own_domid : ?backend:Backend.t -> unit -> int
(** [own_domid ()] is this process's domain id under [backend] (default
    {!Backend.default}): under Xen, xenstore's [domid] key; under the unix
    backend, [$VCHAN_DOMID] (default 0). The domain a server serves from and
    a client connects from.
    @raise Vchan_rs.Error.Vchan when the backend cannot be used ([`Unavailable]). *)

val listen :
  ?backend:Backend.t ->
  domid:int ->
  port:port ->
  ?read_size:int ->
  ?write_size:int ->
  unit ->
  t
(** [listen ~domid ~port ()] serves client domain [domid] on [port] and
    returns at once (the client may connect later; see {!accept}).
    [read_size] and [write_size] (default 65536) are the minimum sizes of
    the rings we read from and write to, at most 1 MiB. [backend] defaults
    to {!Backend.default}.
    @raise Vchan_rs.Error.Vchan on failure (e.g. [`Addr_in_use], [`Invalid_argument]). *)

val accept : t -> unit Lwt.t
(** [accept t] resolves once the client of server [t] connected (or came and
    went). Immediate for a client. *)

val connect :
  ?backend:Backend.t ->
  ?timeout:float ->
  domid:int ->
  port:port ->
  unit ->
  t Lwt.t
(** [connect ~domid ~port ()] connects to the server in domain [domid] on
    [port]. While no server is there, it retries with a growing pause (1 ms
    up to 50 ms), for at most [timeout] seconds (default, and [infinity]:
    forever). Fails with {!Vchan_rs.Error.Vchan} ([`Timeout], [`Busy], ...;
    [`Invalid_argument] for a [timeout] that is [nan] or negative). *)

(** {1 Flow} *)

val read : flow -> (Cstruct.t Vchan_rs.S.or_eof, error) result Lwt.t
(** [read t] waits for data and returns [Ok (`Data view)], a view of at most
    the contiguous readable bytes of the read ring (zero-copy; see above),
    or [Ok `Eof] once the peer closed and every byte it wrote before
    closing was read. After {!close} or [shutdown t `read], [Ok `Eof]. *)

val write : flow -> Cstruct.t -> (unit, write_error) result Lwt.t
(** [write t buf] copies all of [buf] into the write ring, waiting for room
    as needed. [Error `Closed] if we closed, or the peer closed before all
    of it was written. *)

val write_from_fd :
  t -> Unix.file_descr -> ([ `Wrote of int | `Eof | `Fd_empty ], write_error) result Lwt.t
(** [write_from_fd t fd] reads from [fd] straight into the write ring's free
    space, with no buffer in between (one [read(2)], then the bytes are
    published), waiting for room in the ring (half of it) as needed:
    [`Wrote n] for the [n] bytes moved, [`Eof] once [fd] is at end-of-file,
    [`Fd_empty] when [fd] has nothing now (wait until it is readable, then
    call again). [fd] must be non-blocking, or a regular file (a read of it
    must not block the Lwt scheduler). [Error `Closed] once we or the peer
    closed. *)

val writev : flow -> Cstruct.t list -> (unit, write_error) result Lwt.t
(** [writev t bufs] writes each buffer in turn. *)

val shutdown : flow -> [ `read | `write | `read_write ] -> unit Lwt.t
(** A vchan has no half-close: [shutdown t `read] only makes later reads
    return [`Eof]; [`write] and [`read_write] {!close} [t] (as ocaml-vchan
    does). *)

val close : flow -> unit Lwt.t
(** [close t] closes the vchan: the peer can still read everything we wrote,
    then sees [`Eof]. The view {!read} returned last is acknowledged first,
    so a peer waiting in {!linger} sees it read. Later writes fail with
    [`Closed], reads give [`Eof]. Idempotent. *)

(** {1 Extras} *)

(** The peer's state, as {!val-state} reports it. *)
type state =
  | Waiting  (** The client has not connected yet (server only). *)
  | Connected  (** Both ends are connected. *)
  | Exited  (** The peer closed or died, or we closed. *)

val state : t -> state
(** The peer's state. A peer that died is seen as [Exited]. *)

val data_ready : t -> int
(** Bytes readable now without waiting (0 once closed). *)

val buffer_space : t -> int
(** Bytes writable now without waiting (0 once closed). *)

val linger : t -> (unit, write_error) result Lwt.t
(** [linger t] resolves once the peer has read every byte written so far,
    as [SO_LINGER] waits before a socket's close: call it before {!close}
    when the peer may stop reading as soon as it sees the close (Xen's
    [vchan-socket-proxy] does). [Error `Closed] if we closed, or the peer
    closed or died with some of it unread. *)

val send : t -> Cstruct.t -> (unit, write_error) result Lwt.t
(** [send t pkt] writes all of [pkt] at once, waiting until the ring has
    room for all of it: the reader never sees part of it. A packet larger
    than the write ring fails with [`Invalid_argument]. *)

val read_into : t -> Cstruct.t -> (int Vchan_rs.S.or_eof, error) result Lwt.t
(** [read_into t buf] copies up to [Cstruct.length buf] readable bytes into
    [buf], waiting until at least one is readable: [Ok (`Data n)] with
    [n > 0] ([0] only for an empty [buf]), or [Ok `Eof] at the end of the
    stream. The copy releases the ring to the writer piece by piece as it
    goes, so a writer waiting for room resumes at once: prefer it to
    {!read} when the data is copied out anyway (it is how {!Vchan_rs_lwt_unix}'s
    [Lwt_io] channels read). A view {!read} returned is consumed first. *)

val recv : t -> Cstruct.t -> (unit Vchan_rs.S.or_eof, error) result Lwt.t
(** [recv t buf] fills all of [buf] at once (a packet sent with {!send}),
    waiting until that much is readable; [Ok `Eof] at the end of the
    stream. A packet larger than the read ring can never arrive. *)

val peer_vanished : t -> bool
(** Did the peer go away without closing the vchan (its process died)? Its
    {!val-state} is then [Exited] and {!read} gives what it wrote, then [`Eof],
    as after a close. Known on the unix backend; under Xen a dead peer
    looks like one that closed, and this stays [false]. *)

val is_server : t -> bool
(** Did {!listen} (or {!server}) make [t]? *)
