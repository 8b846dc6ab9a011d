(** Event channels between the endpoints of one process, for tests and for
    {!In_memory}: as ocaml-vchan's [In_memory_events]. Ports are ints;
    [send] wakes the other end's [recv]; events coalesce. *)

include S.EVENTS with type port = int

val assert_cleaned_up : unit -> unit
(** [assert_cleaned_up ()] raises [Failure] if a port is still listening or
    a channel still open: for test suites, after closing everything. *)
