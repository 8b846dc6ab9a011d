(* Bytecode smoke test: a server and a client in one process (threads of
   one Lwt loop), each direction through the *_byte stubs. *)

open Lwt.Infix
module E = Vchan_rs_lwt_unix.Endpoint

let () =
  let dir = Filename.temp_file "vchan-rs-bc" "" in
  Sys.remove dir;
  Unix.putenv "VCHAN_UNIX_DIR" dir;
  let parent = Unix.getpid () in
  at_exit (fun () ->
      if Unix.getpid () = parent then
        ignore (Sys.command ("rm -rf " ^ Filename.quote dir)));
  Unix.putenv "VCHAN_DOMID" "0";
  let job name =
    let port = Result.get_ok (Vchan_rs.Port.of_string name) in
    (* Domain 0 serving itself: the unix backend allows it. *)
    let s = E.listen ~domid:0 ~port ~read_size:1024 ~write_size:2048 () in
    E.connect ~domid:0 ~port () >>= fun c ->
    E.accept s >>= fun () ->
    let msg = String.init 5000 (fun i -> Char.chr (i land 0xff)) in
    let sent = E.write c (Cstruct.of_string msg) in
    let rec recv acc =
      if String.length acc >= 5000 then Lwt.return acc
      else
        E.read s >>= function
        | Ok (`Data v) -> recv (acc ^ Cstruct.to_string v)
        | _ -> failwith "read"
    in
    recv "" >>= fun got ->
    sent >>= fun r ->
    assert (r = Ok ());
    assert (got = msg);
    let p = Cstruct.of_string "packet" in
    E.send s p >>= fun r ->
    (match r with Ok () -> () | Error e -> failwith ("send: " ^ Vchan_rs.Error.to_string e));
    let b = Cstruct.create 6 in
    E.recv c b >>= fun r ->
    assert (r = Ok (`Data ()));
    assert (Cstruct.to_string b = "packet");
    (* The server's last view is not acknowledged yet: some room is still
       taken. *)
    assert (E.data_ready c = 0);
    assert (E.buffer_space c > 0 && E.buffer_space c < 1024);
    E.close c >>= fun () ->
    E.read s >>= fun r ->
    assert (r = Ok `Eof);
    E.close s
  in
  Lwt_main.run (job "bc");
  (* Again under Vchan_rs_lwt_unix.Engine (its epoll stubs' bytecode twins;
     the sleep makes an epoll_wait that sleeps). *)
  Vchan_rs_lwt_unix.Engine.install ();
  assert (Vchan_rs_lwt_unix.Engine.installed ());
  Lwt_main.run (Lwt_unix.sleep 0.01 >>= fun () -> job "bc-engine");
  print_endline "bytecode: ok"
