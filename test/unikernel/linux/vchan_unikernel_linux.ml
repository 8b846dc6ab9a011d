(* The unikernel's program on Linux: Unix.gettimeofday as the clock. *)

let () = Unikernel_runner.main ~name:"vchan-linux" ~now:Unix.gettimeofday
