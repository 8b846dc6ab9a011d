(* What vbench.ml measures in the ocaml-vchan column: its Unix library
   vchan-unix (under vchan-xensim) and its In_memory. Built by
   scripts/ocaml-vchan.sh, never by the project's dune build. *)

open Lwt.Infix
module M = Vchan_lwt_unix.M
module In_memory = Vchan.In_memory

let port name = match Vchan.Port.of_string name with Ok p -> p | Error (`Msg m) -> failwith m
let open_server = Vchan_lwt_unix.open_server
let open_client = Vchan_lwt_unix.open_client

(* ocaml-vchan runs on Lwt's default engine, as its programs do. *)
let install_engine = function
  | None | Some ("" | "default") -> ()
  | Some e -> failwith ("BENCH_LWT_ENGINE=" ^ e ^ ": ocaml-vchan runs on Lwt's default engine")

(* ocaml-vchan reports failures as Failure, which vbench handles. *)
let error_message (_ : exn) = None

(* Lwt_main.run with a 10 ms tick: without it, 1 ping-pong server in 25 to
   130 never ended, stuck in poll(2) with no timeout after its endpoint
   closed (docs/benchmarks.md). *)
let run main =
  let rec tick () = Lwt_unix.sleep 0.01 >>= tick in
  Lwt_main.run (Lwt.pick [ main; tick () ])
