(** The unikernel's program: the functor's cases ({!Functor_cases.all}),
    then timings ({!Functor_timing.all}, {!Mem_timing.all}), each reported on a line of
    its own on stdout, prefixed by [name ^ ": "]:
    - [ID ok] or [ID FAILED: REASON] for each case;
    - [timings ok] (or [timings FAILED: REASON]), then [time ID VALUE UNIT]
      for each timing;
    - last, [N passed, M failed].

    [make test-unikernel] (scripts/test-unikernel.sh) reads these lines. *)

val main : name:string -> now:(unit -> float) -> unit
(** [main ~name ~now] runs every case and timing ([now ()]: a monotonic
    clock in seconds), prints the lines, and exits with status 0 if every
    case passed and the timings ran, else 1. Does not return. *)
