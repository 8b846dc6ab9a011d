(* The Solo5 unikernel: the functor's cases and timings (Unikernel_runner),
   with Solo5's monotonic clock. *)

external now : unit -> float = "vchan_unikernel_now"

let () = Unikernel_runner.main ~name:"vchan-unikernel" ~now
