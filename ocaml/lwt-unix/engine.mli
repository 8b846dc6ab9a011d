(** An epoll-based Lwt engine, opt-in: [Engine.install ()] at the start of
    a program (before [Lwt_main.run]) makes it Lwt's engine.

    {b Why.} Lwt's default engine (libev) makes one [getpid] per loop
    iteration (Lwt creates its loop with [EVFLAG_FORKCHECK]), and a vchan
    endpoint watched level-triggered must consume its events (one
    [recvmmsg] on the unix backend) at every wake-up. Under this engine a
    unix-backend endpoint's event descriptor is watched edge-triggered and
    a wake-up costs the [epoll_wait] alone (a xen-backend endpoint stays
    level-triggered: Xen's event channel device masks a port until its
    events are consumed, so every wake-up must consume them): with the peer's notification
    ([sendto]), two system calls per wake-up, plus the [recvmmsg] that
    consumes the queued notifications now and then (at the latest every 48
    wake-ups; one per ~30 measured in [make bench]'s system-call row: see
    the README). A peer's death is still seen at once: the endpoint also
    watches its connection socket for the hang-up alone ({!on_hangup};
    see endpoint.ml). Everything else costs what it costs under libev: one
    [epoll_wait] per loop iteration, one [epoll_ctl] per change of what a
    descriptor is watched for.

    {b When to install it.} In programs whose vchans sleep and wake often
    (request/response traffic, small messages); a bulk stream rarely
    sleeps (both sides spin briefly before waiting) and gains little. It
    changes nothing in how the rest of a Lwt program behaves.

    {b Contract.} It is a complete engine for any Lwt program
    ([Lwt_engine.abstract]):
    - [on_readable]/[on_writable] watch any pollable descriptor,
      level-triggered, with any number of watchers per descriptor (each is
      called at every iteration while the descriptor is ready, until it is
      stopped); a descriptor epoll refuses (a regular file, a directory) is
      treated as always ready, as libev does, and so is one whose
      registration fails (its watchers' own system calls then report the
      error). Close a descriptor only after stopping its watchers
      ([Lwt_unix.close] does): the epoll set forgets a closed descriptor.
    - [on_timer delay repeat f]: one-shot or repeating timers
      ([Lwt_unix.sleep], [Lwt_unix.timeout], [Lwt_unix.with_timeout]),
      on the monotonic clock (as libev; no change of the wall clock moves
      them), with millisecond resolution, rounded up: a timer never fires
      early. A
      timer registered during an iteration fires at the earliest in the
      next one.
    - [iter true] sleeps until a descriptor is ready or the next timer is
      due; [iter false] only polls. A signal ends the sleep early (an
      iteration with no event). Exceptions raised by callbacks propagate out
      of [iter] after every callback of the iteration has run.
    - [fake_io], [transfer] (to or from another engine; edge watchers
      become level watchers there), [destroy] (closes the epoll
      descriptor), and [fork] ([Lwt_unix.fork]: the child makes an epoll
      set of its own) behave as the abstract engine specifies. No
      [getpid] per iteration.

    Not thread-safe, as no Lwt engine is: use it from the thread running
    [Lwt_main.run] (a sleeping [iter] releases the OCaml runtime lock). *)

val create : unit -> Lwt_engine.t
(** [create ()] is a new engine, with an epoll descriptor of its own
    (close-on-exec). Raises [Unix.Unix_error] if epoll_create1 fails. *)

val install : unit -> unit
(** [install ()] makes a new engine Lwt's current one
    ([Lwt_engine.set]: the watchers and timers of the previous engine move
    to it, and the previous engine is destroyed), unless one made by
    {!create} already is. *)

val installed : unit -> bool
(** [installed ()] is true when Lwt's current engine was made by
    {!create}. *)

val now : unit -> float
(** [now ()] is the clock the engine's timers use: seconds on the
    monotonic clock ([CLOCK_MONOTONIC]; its origin is arbitrary, only
    differences mean something). *)

val on_readable_edge :
  Unix.file_descr -> (Lwt_engine.event -> unit) -> Lwt_engine.event option
(** [on_readable_edge fd f] watches [fd] {e edge-triggered} when the
    current engine is one of ours ([None] otherwise: use
    [Lwt_engine.on_readable]): [f] is called once each time new input
    arrives on [fd] (when the kernel queues something for it: a packet, a
    connection, end-of-file), not at every iteration while unread input
    remains. Stop it with [Lwt_engine.stop_event]. While a level watcher
    (readable or writable) watches the same descriptor, [fd] is watched
    level-triggered, and [f] is called as a level watcher is. This is what
    {!Endpoint} uses for its event descriptor; its caller must cope with
    both (see endpoint.ml). *)

val on_hangup :
  Unix.file_descr -> (Lwt_engine.event -> unit) -> Lwt_engine.event option
(** [on_hangup fd f] watches [fd] for its peer's hang-up alone
    ([EPOLLRDHUP], edge-triggered; [EPOLLHUP] and [EPOLLERR] are always
    reported) when the current engine is one of ours ([None] otherwise):
    [f] is called when the other end of a socket shuts down, closes or
    dies, not when data arrives. {!Endpoint} uses it on the unix backend's
    connection socket (plumbing.ml), so that a peer's death
    is seen at once although its edge-triggered wake-ups are not all
    consumed. Stop it with [Lwt_engine.stop_event] before the descriptor
    is closed. While other watchers watch [fd], [f] is called whenever
    they are told of a hang-up (with their events). *)
