(** Running an alcotest suite the way CI counts it. *)

val run : string -> (string * (string * (unit -> unit)) list) list -> unit
(** [run name groups] runs each group's cases (all [`Quick]) with alcotest,
    then prints a closing line in cargo's format
    ([test result: ok. N passed; M failed]), which [.ci/run] sums over all
    test runners, and exits with status 1 if a case failed. *)

val pseudo_random : ?seed:int64 -> int -> bytes
(** [pseudo_random] is {!Pseudo_random.bytes}: [n] deterministic
    pseudo-random bytes (xorshift64), fast enough for 100 MiB. *)

val unix_backend_root : unit -> string
(** [unix_backend_root ()] makes a fresh directory (removed at exit), puts
    the unix backend's rendezvous in its [vchan] subdirectory
    ([VCHAN_UNIX_DIR]), and sets [VCHAN_DOMID=1] and [VCHAN_BACKEND=unix]
    for this process and its children. Returns the directory. *)

val env_with : (string * string) list -> string array
(** [env_with bindings] is this process's environment with [bindings]
    added, replacing variables of the same names. *)

val spawn_self : (string * string) list -> int
(** [spawn_self env] runs this executable again, without arguments, with
    [env] added to (or replacing in) this process's environment; returns the
    child's pid. The suites use it for the peer of a test, in a process of
    its own. *)

val waitpid : int -> Unix.process_status
(** [waitpid pid] waits for child [pid] (retrying on [EINTR]). *)

val expect_exit0 : string -> int -> unit
(** [expect_exit0 what pid] waits for child [pid] and fails (with [what] in
    the message) unless it exited with status 0. *)

val run_child : string -> (unit -> unit) -> 'a
(** [run_child role f] runs [f ()], the peer role [role] of a suite in its
    own process, and exits: status 0 if it returned, else 3 after printing
    the exception (with [role]) on stderr. *)
