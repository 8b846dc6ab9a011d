(* Round-trip latency and one-way throughput: first Vchan_rs.In_memory in
   this process (In_memory_bench), then between two processes over the
   unix backend: this program forks a server (domain 0) and is its client
   (domain 1).  Usage: pingpong.exe [ROUNDS] [SIZE] *)

open Lwt.Infix
module E = Vchan_rs_lwt_unix.Endpoint

let get = function Ok x -> x | Error e -> failwith (Vchan_rs.Error.to_string e)
let port = Result.get_ok (Vchan_rs.Port.of_string "pingpong")

module R = Flow_util.Make (E)

let read_n = R.read_n

let server size =
  E.server ~domid:1 ~port () >>= fun t ->
  let buf = Cstruct.create size in
  let rec loop () =
    E.read t >>= function
    | Ok `Eof -> E.close t
    | Ok (`Data v) when Cstruct.length v = 1 && Cstruct.get_char v 0 = 'T' ->
        (* Throughput phase: sink everything until the end. *)
        let rec sink () =
          E.read t >>= function Ok (`Data _) -> sink () | _ -> E.close t
        in
        E.write t (Cstruct.of_string "A") >|= get >>= sink
    | Ok (`Data v) ->
        Cstruct.blit v 0 buf 0 (Cstruct.length v);
        read_n t buf (Cstruct.length v) >>= fun () ->
        E.write t buf >|= get >>= loop
    | Error e -> failwith (Vchan_rs.Error.to_string e)
  in
  loop ()

let client rounds size =
  E.client ~domid:0 ~port () >>= fun t ->
  let msg = Cstruct.create size and back = Cstruct.create size in
  let t0 = Unix.gettimeofday () in
  let rec loop i =
    if i = rounds then Lwt.return_unit
    else E.write t msg >|= get >>= fun () -> read_n t back 0 >>= fun () -> loop (i + 1)
  in
  loop 0 >>= fun () ->
  let dt = Unix.gettimeofday () -. t0 in
  Printf.printf "%d-byte round trip: %.1f us\n%!" size (dt /. float rounds *. 1e6);
  E.write t (Cstruct.of_string "T") >|= get >>= fun () ->
  read_n t (Cstruct.create 1) 0 >>= fun () ->
  let chunk = Cstruct.create (1 lsl 20) and total = 1 lsl 30 in
  let t0 = Unix.gettimeofday () in
  let rec send n =
    if n >= total then Lwt.return_unit else E.write t chunk >|= get >>= fun () -> send (n + Cstruct.length chunk)
  in
  send 0 >>= fun () ->
  let dt = Unix.gettimeofday () -. t0 in
  Printf.printf "1 GiB one way (64 KiB rings): %.3f s, %.0f MB/s\n%!" dt (float total /. dt /. 1e6);
  E.close t

let () =
  let rounds = try int_of_string Sys.argv.(1) with _ -> 20000 in
  let size = try int_of_string Sys.argv.(2) with _ -> 64 in
  In_memory_bench.run rounds size;
  let dir = Filename.temp_file "vchan-pingpong" "" in
  Sys.remove dir;
  Unix.putenv "VCHAN_UNIX_DIR" dir;
  let parent = Unix.getpid () in
  at_exit (fun () ->
      if Unix.getpid () = parent then
        ignore (Sys.command ("rm -rf " ^ Filename.quote dir)));
  match Unix.fork () with
  | 0 ->
      Unix.putenv "VCHAN_DOMID" "0";
      Lwt_main.run (server size);
      exit 0
  | pid ->
      Unix.putenv "VCHAN_DOMID" "1";
      Lwt_main.run (client rounds size);
      ignore (Unix.waitpid [] pid)
