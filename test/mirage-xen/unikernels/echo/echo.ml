(* make test-xen's unikernel, a PVH domU of the nested Xen. Its role is in
   its domain name (xl's name key in xenstore): "...-server" serves dom0,
   anything else connects to dom0's server. It runs two sessions, on ports
   uk-ROLE-1 (dom0's peer: vchan-cat) and uk-ROLE-2 (dom0's peer: Xen's C
   libxenvchan, test/xen/xvc.c). In each it receives [size] bytes, prints
   their MD5 on its console, sends them back and closes: dom0 checks the
   echo, and scripts/test-xen.sh the console line, against the file dom0
   sent. *)
open Lwt.Infix

let size = 262144

let say fmt = Printf.ksprintf (fun s -> print_endline s) fmt

(* Read all [size] bytes. The last view is acknowledged by [close]
   (Endpoint.Make's close acknowledges the view read returned last), so the
   peer sees everything it sent read before it sees us closed. *)
let rec read_all flow buf got =
  if got = size then Lwt.return (Ok ())
  else
    Vchan_rs_xen.read flow >>= function
    | Ok (`Data c) when Cstruct.length c > size - got ->
        Lwt.return (Error (Printf.sprintf "more than %d bytes" size))
    | Ok (`Data c) ->
        Cstruct.blit_to_bytes c 0 buf got (Cstruct.length c);
        read_all flow buf (got + Cstruct.length c)
    | Ok `Eof -> Lwt.return (Error (Printf.sprintf "end after %d bytes" got))
    | Error e -> Lwt.return (Error (Format.asprintf "%a" Vchan_rs_xen.pp_error e))

let session role n =
  let name = Printf.sprintf "uk-%s-%d" role n in
  match Vchan_rs.Port.of_string name with
  | Error (`Msg e) -> Lwt.return (say "XENUK %s %d FAIL: port %s: %s" role n name e)
  | Ok port ->
      (* Rings of 64 KiB as a server: with the default, ocaml-vchan's
         1 KiB, the echo took hundreds of round trips each way (over two
         minutes with xvc once, the emulated machine being loaded). *)
      (if role = "server" then
         Vchan_rs_xen.server ~domid:0 ~port ~read_size:65536 ~write_size:65536 ()
       else Vchan_rs_xen.client ~domid:0 ~port ())
      >>= fun flow ->
      say "xenuk: %s %d connected (port %s)" role n name;
      let buf = Bytes.create size in
      read_all flow buf 0 >>= fun got ->
      (match got with
      | Error e -> Lwt.return (Error e)
      | Ok () -> (
          Vchan_rs_xen.write flow (Cstruct.of_bytes buf) >|= function
          | Ok () -> Ok ()
          | Error e -> Error (Format.asprintf "%a" Vchan_rs_xen.pp_write_error e)))
      >>= fun r ->
      Vchan_rs_xen.close flow >|= fun () ->
      match r with
      | Ok () -> say "XENUK %s %d ok md5=%s" role n (Digest.to_hex (Digest.bytes buf))
      | Error e -> say "XENUK %s %d FAIL: %s" role n e

let main () =
  Xen_os.Xs.make () >>= fun xs ->
  Xen_os.Xs.(immediate xs (fun h -> read h "name")) >>= fun name ->
  let role =
    let s = "-server" and l = String.length name in
    if l >= 7 && String.sub name (l - 7) 7 = s then "server" else "client"
  in
  say "xenuk: %s up, the %s" name role;
  session role 1 >>= fun () ->
  session role 2 >|= fun () -> say "xenuk: done"

let () = Xen_os.Main.run (main ())
