(* The library that vbench.ml measures: vchan-rs. (The ocaml-vchan column
   compiles vbench.ml with bench/ocaml-vchan/impl.ml, which has the same
   items over ocaml-vchan.) *)

module M = Vchan_rs_lwt_unix.M
module In_memory = Vchan_rs.In_memory

let port name = Result.get_ok (Vchan_rs.Port.of_string name)
let open_server = Vchan_rs_lwt_unix.open_server
let open_client = Vchan_rs_lwt_unix.open_client

(* BENCH_LWT_ENGINE: unset or "vchan-rs" installs Vchan_rs_lwt_unix.Engine
   (edge-triggered wake-ups); "default" keeps Lwt's (libev). *)
let install_engine = function
  | None | Some ("" | "vchan-rs") -> Vchan_rs_lwt_unix.Engine.install ()
  | Some "default" -> ()
  | Some e -> failwith (Printf.sprintf "BENCH_LWT_ENGINE=%s: expected vchan-rs or default" e)

(* The library's own exception, as text. *)
let error_message = function
  | Vchan_rs.Error.Vchan e -> Some (Vchan_rs.Error.to_string e)
  | _ -> None

let run = Lwt_main.run
