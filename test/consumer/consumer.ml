(* A program as a unikernel author writes it: it depends on the library
   vchan-rs only (and lwt, which vchan-rs needs), and runs an echo over
   Vchan_rs.In_memory with its own scheduler loop (no Lwt_main, which is
   lwt.unix's). check.sh verifies that no unix or threads code was linked. *)

open Lwt.Infix
module V = Vchan_rs.In_memory

let port = Result.get_ok (Vchan_rs.Port.of_string "consumer")

let main () =
  let server = V.server ~domid:1 ~port () in
  V.client ~domid:0 ~port () >>= fun c ->
  server >>= fun s ->
  V.write c (Cstruct.of_string "unikernel") >>= fun _ ->
  V.read s >>= function
  | Ok (`Data v) ->
      V.close c >>= fun () ->
      V.close s >|= fun () ->
      V.assert_cleaned_up ();
      Cstruct.to_string v
  | _ -> Lwt.fail_with "no data"

let () =
  let p = main () in
  while Lwt.state p = Lwt.Sleep && Lwt.paused_count () > 0 do
    Lwt.wakeup_paused ()
  done;
  match Lwt.state p with
  | Lwt.Return "unikernel" -> print_endline "consumer: ok"
  | Lwt.Return s -> failwith ("consumer: got " ^ s)
  | Lwt.Fail e -> raise e
  | Lwt.Sleep -> failwith "consumer: deadlock"
