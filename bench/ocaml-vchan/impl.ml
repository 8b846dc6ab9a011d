(* The library that vbench.ml measures in the ocaml-vchan column:
   ocaml-vchan's Unix library vchan-unix (its grants and event channels
   through Xen's C libraries, so xensim's under vchan-xensim; xenstore
   through xenstored's socket, which vchan-xensim serves) and its
   In_memory. Built with bench/ocaml/vbench.ml and flow_util.ml in the
   scratch workspace of scripts/ocaml-vchan.sh, never by the project's
   dune build (no dune file here). *)

open Lwt.Infix

module M = Vchan_lwt_unix.M
module In_memory = Vchan.In_memory

let port name =
  match Vchan.Port.of_string name with Ok p -> p | Error (`Msg m) -> failwith m

let open_server = Vchan_lwt_unix.open_server
let open_client = Vchan_lwt_unix.open_client

(* ocaml-vchan runs on Lwt's default engine (libev), as its programs do. *)
let install_engine = function
  | None | Some ("" | "default") -> ()
  | Some e -> failwith (Printf.sprintf "BENCH_LWT_ENGINE=%s: ocaml-vchan runs on Lwt's default engine" e)

(* ocaml-vchan reports failures as Failure, which vbench handles. *)
let error_message (_ : exn) = None

(* Lwt_main.run, its engine woken every 10 ms. Measured: 1 ping-pong server
   in 25 to 130 never ended. Its endpoint had closed (a line printed after
   M.close returned showed up) yet Lwt_main.run did not return: its main
   thread sat in poll(2) with no timeout. So the promise was resolved in
   another system thread, which the engine is never told of. The tick bounds
   that wait; at 100 wake-ups a second against the ~10,000 of a ping-pong,
   it does not move the figures. *)
let run main =
  let rec tick () = Lwt_unix.sleep 0.01 >>= tick in
  Lwt_main.run (Lwt.pick [ main; tick () ])
