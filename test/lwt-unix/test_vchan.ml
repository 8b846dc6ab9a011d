(* Tests of the OCaml library and of vchan-cat, over the unix backend.

   Every vchan has its server in a separate process: this executable run
   again with VCHAN_RS_TEST_CHILD=<role> (domain 0), while the test itself
   is the client (domain 1). All of them meet in a fresh VCHAN_UNIX_DIR. *)

open Lwt.Infix
module E = Vchan_rs_lwt_unix.Endpoint

let port s = Result.get_ok (Vchan_rs.Port.of_string s)
let child_var = "VCHAN_RS_TEST_CHILD"

let fail fmt = Printf.ksprintf failwith fmt

let get_ok what = function
  | Ok x -> x
  | Error e -> fail "%s: %s" what (Vchan_rs.Error.to_string e)

let pseudo_random = Test_harness.pseudo_random

(* ---- Server roles, run in child processes ---- *)

let rec read_all t f =
  E.read t >>= function
  | Ok `Eof -> Lwt.return_unit
  | Ok (`Data v) -> f v >>= fun () -> read_all t f
  | Error e -> fail "server read: %s" (Vchan_rs.Error.to_string e)

let write_exn t buf = E.write t buf >|= get_ok "server write"

(* Echo every view back, transformed by [f], until the end of the stream. *)
let echo_server name f =
  E.server ~domid:1 ~port:(port name) () >>= fun t ->
  read_all t (fun v -> write_exn t (f v)) >>= fun () -> E.close t

(* Send [size] bytes, then [linger]: the client closes right after its
   last read, so only its close acknowledges the last view. *)
let linger_server name size =
  E.server ~domid:1 ~port:(port name) () >>= fun t ->
  write_exn t (Cstruct.of_bytes (pseudo_random ~seed:7L size)) >>= fun () ->
  E.linger t >>= function
  | Ok () -> E.close t
  | Error e -> fail "linger: the client closed with bytes unread: %s" (Vchan_rs.Error.to_string e)

let capitalise v = Cstruct.of_string (String.uppercase_ascii (Cstruct.to_string v))

(* Receive [size] bytes, answer with their MD5 (hex), then wait for the
   client to close. *)
let digest_server name size =
  E.server ~domid:1 ~port:(port name) ~read_size:65536 ~write_size:4096 ()
  >>= fun t ->
  let data = Bytes.create size in
  let got = ref 0 in
  let rec loop () =
    if !got = size then Lwt.return_unit
    else
      E.read t >>= function
      | Ok (`Data v) ->
          let n = min (Cstruct.length v) (size - !got) in
          Cstruct.blit_to_bytes v 0 data !got n;
          got := !got + n;
          loop ()
      | Ok `Eof -> fail "digest server: end of stream after %d bytes" !got
      | Error e -> fail "digest server: %s" (Vchan_rs.Error.to_string e)
  in
  loop () >>= fun () ->
  write_exn t (Cstruct.of_string (Digest.to_hex (Digest.bytes data)))
  >>= fun () -> read_all t (fun _ -> Lwt.return_unit) >>= fun () -> E.close t

(* Line protocol over Lwt_io: answer "ok:<line>" until "quit". *)
let lines_server name =
  Vchan_rs_lwt_unix.open_server ~domid:1 ~port:(port name) () >>= fun (ic, oc) ->
  let rec loop () =
    Lwt_io.read_line ic >>= function
    | "quit" -> Lwt_io.write_line oc "bye" >>= fun () -> Lwt_io.flush oc
    | l -> Lwt_io.write_line oc ("ok:" ^ l) >>= fun () -> Lwt_io.flush oc >>= loop
  in
  loop () >>= fun () -> Lwt_io.close oc >>= fun () -> Lwt_io.close ic

(* Write [first] bytes (< ring), then [rest] more (more than the ring holds
   once [first] is in), then close and exit at once. *)
let burst_server name first rest =
  E.server ~domid:1 ~port:(port name) ~read_size:4096 ~write_size:4096 ()
  >>= fun t ->
  let data = pseudo_random ~seed:7L (first + rest) in
  write_exn t (Cstruct.of_bytes data ~off:0 ~len:first) >>= fun () ->
  write_exn t (Cstruct.of_bytes data ~off:first ~len:rest) >>= fun () ->
  E.close t

(* Packets: receive packets of growing sizes and send each back. *)
let packet_server name count =
  E.server ~domid:1 ~port:(port name) ~read_size:8192 ~write_size:8192 ()
  >>= fun t ->
  let rec loop i =
    if i = count then E.close t
    else
      let len = 1 + (i * 37 mod 4000) in
      let buf = Cstruct.create len in
      E.recv t buf >>= function
      | Ok (`Data ()) -> E.send t buf >|= get_ok "send" >>= fun () -> loop (i + 1)
      | Ok `Eof -> fail "packet server: early end of stream"
      | Error e -> fail "packet server: %s" (Vchan_rs.Error.to_string e)
  in
  loop 0

(* VCHAN_TEST_ENGINE=vchan-rs: the suite (its endpoint group) and its
   children run under Vchan_rs_lwt_unix.Engine (edge-triggered wake-ups);
   test/lwt-unix/dune runs it both ways. *)
let under_engine =
  match Sys.getenv_opt "VCHAN_TEST_ENGINE" with
  | None | Some "" | Some "default" -> false
  | Some "vchan-rs" -> true
  | Some e -> fail "VCHAN_TEST_ENGINE=%s: expected vchan-rs or default" e

let use_engine () =
  if under_engine then begin
    Vchan_rs_lwt_unix.Engine.install ();
    if not (Vchan_rs_lwt_unix.Engine.installed ()) then fail "the engine is not installed"
  end

let run_child role =
  ignore (Unix.alarm 120);
  use_engine ();
  let job =
    match String.split_on_char ':' role with
    | [ "echo"; name ] -> echo_server name Fun.id
    | [ "caps"; name ] -> echo_server name capitalise
    | [ "digest"; name; size ] -> digest_server name (int_of_string size)
    | [ "lines"; name ] -> lines_server name
    | [ "burst"; name; a; b ] -> burst_server name (int_of_string a) (int_of_string b)
    | [ "packets"; name; n ] -> packet_server name (int_of_string n)
    | [ "linger"; name; size ] -> linger_server name (int_of_string size)
    | _ -> fail "unknown child role %S" role
  in
  Test_harness.run_child role (fun () -> Lwt_main.run job)

(* ---- Test-side helpers ---- *)

(* Start the server role [role] in domain 0. *)
let spawn role = Test_harness.spawn_self [ (child_var, role); ("VCHAN_DOMID", "0") ]
let env_with = Test_harness.env_with
let waitpid = Test_harness.waitpid
let expect_exit0 = Test_harness.expect_exit0

(* Run [f] as the client of a server child; the child must exit 0. *)
let with_server role f =
  let pid = spawn role in
  match Lwt_main.run (Lwt_unix.with_timeout 100. f) with
  | () -> expect_exit0 role pid
  | exception e ->
      (try Unix.kill pid Sys.sigkill with _ -> ());
      ignore (waitpid pid);
      raise e

let connect name = E.client ~domid:0 ~port:(port name) ()

let read_exactly t n =
  let out = Buffer.create n in
  let rec loop () =
    if Buffer.length out >= n then Lwt.return (Buffer.contents out)
    else
      E.read t >>= function
      | Ok (`Data v) ->
          Buffer.add_string out (Cstruct.to_string v);
          loop ()
      | Ok `Eof -> fail "end of stream after %d of %d bytes" (Buffer.length out) n
      | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)
  in
  loop ()

let expect_eof t =
  E.read t >|= function
  | Ok `Eof -> ()
  | Ok (`Data v) -> fail "expected end of stream, got %d bytes" (Cstruct.length v)
  | Error e -> fail "expected end of stream: %s" (Vchan_rs.Error.to_string e)

(* ---- Tests ---- *)

let test_echo () =
  with_server "echo:echo" (fun () ->
      connect "echo" >>= fun t ->
      Alcotest.(check bool) "client" false (E.is_server t);
      Alcotest.(check bool) "connected" true (E.state t = E.Connected);
      let msgs = [ "hello"; String.make 5000 'x'; "world\n"; String.make 70000 'y' ] in
      Lwt_list.iter_s
        (fun m ->
          E.write t (Cstruct.of_string m) >|= get_ok "write" >>= fun () ->
          read_exactly t (String.length m) >|= fun got ->
          Alcotest.(check int) "echo length" (String.length m) (String.length got);
          Alcotest.(check bool) "echoed" true (got = m))
        msgs
      >>= fun () -> E.close t)

(* Write all of [data] in writes of varying sizes (1 + off * step mod max). *)
(* The client reads everything and closes without reading again: its
   close acknowledges the last view, and the server's [linger] sees it. *)
let test_close_acknowledges () =
  let size = 100_000 in
  with_server (Printf.sprintf "linger:linger:%d" size) (fun () ->
      connect "linger" >>= fun t ->
      read_exactly t size >>= fun got ->
      if got <> Bytes.to_string (pseudo_random ~seed:7L size) then fail "the data differs";
      E.close t)

let write_in_pieces t data ~step ~max =
  let size = Bytes.length data in
  let rec go off =
    if off >= size then Lwt.return_unit
    else
      let len = min (size - off) (1 + (off * step mod max)) in
      E.write t (Cstruct.of_bytes data ~off ~len) >|= get_ok "write" >>= fun () ->
      go (off + len)
  in
  go 0

(* One Lwt thread writes while another reads the same endpoint: both wait
   on its one event descriptor, and neither may miss a wake-up. *)
let test_duplex () =
  let size = 8 * 1024 * 1024 in
  let data = pseudo_random ~seed:3L size in
  with_server "echo:duplex" (fun () ->
      connect "duplex" >>= fun t ->
      let writer = write_in_pieces t data ~step:7 ~max:100_000 in
      let reader = read_exactly t size in
      Lwt.both writer reader >>= fun ((), got) ->
      Alcotest.(check bool) "all echoed, in order" true (got = Bytes.to_string data);
      E.close t)

(* read_into copies and releases as it goes: with a writer thread filling
   the ring, alternating zero-copy views and copying reads of odd sizes
   yields every byte in order (a view is consumed before the copy), and
   read_into into an empty buffer reads nothing. *)
let test_read_into () =
  let size = 4 * 1024 * 1024 in
  let data = pseudo_random ~seed:11L size in
  with_server "echo:into" (fun () ->
      connect "into" >>= fun t ->
      let writer = write_in_pieces t data ~step:13 ~max:90_000 in
      let out = Buffer.create size in
      let buf = Cstruct.create 70_001 in
      let rec reader i =
        if Buffer.length out >= size then Lwt.return_unit
        else if i mod 3 = 0 then
          E.read t >>= function
          | Ok (`Data v) ->
              Buffer.add_string out (Cstruct.to_string v);
              reader (i + 1)
          | Ok `Eof -> fail "end of stream after %d bytes" (Buffer.length out)
          | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)
        else
          let want = 1 + (i * 7919 mod 70_000) in
          E.read_into t (Cstruct.sub buf 0 want) >>= function
          | Ok (`Data n) ->
              if n < 1 || n > want then fail "read_into gave %d of %d" n want;
              Buffer.add_string out (Cstruct.to_string (Cstruct.sub buf 0 n));
              reader (i + 1)
          | Ok `Eof -> fail "end of stream after %d bytes" (Buffer.length out)
          | Error e -> fail "read_into: %s" (Vchan_rs.Error.to_string e)
      in
      Lwt.both writer (reader 0) >>= fun ((), ()) ->
      Alcotest.(check bool) "all echoed, in order" true
        (Buffer.contents out = Bytes.to_string data);
      (E.read_into t (Cstruct.create 0) >|= function
       | Ok (`Data 0) -> ()
       | _ -> fail "read_into of an empty buffer did not give 0")
      >>= fun () -> E.close t)

let test_caps () =
  with_server "caps:caps" (fun () ->
      connect "caps" >>= fun t ->
      let m = "Hello, vchan! 123 abc\n" in
      E.writev t [ Cstruct.of_string m; Cstruct.of_string m ] >|= get_ok "writev"
      >>= fun () ->
      read_exactly t (2 * String.length m) >>= fun got ->
      Alcotest.(check string) "capitalised" (String.uppercase_ascii (m ^ m)) got;
      E.close t)

let test_big_digest () =
  let size = 64 * 1024 * 1024 in
  let data = pseudo_random size in
  let expected = Digest.to_hex (Digest.bytes data) in
  with_server (Printf.sprintf "digest:big:%d" size) (fun () ->
      connect "big" >>= fun t ->
      let t0 = Unix.gettimeofday () in
      let chunk = 1 lsl 20 in
      let rec send off =
        if off >= size then Lwt.return_unit
        else
          E.write t (Cstruct.of_bytes data ~off ~len:(min chunk (size - off)))
          >|= get_ok "write"
          >>= fun () -> send (off + chunk)
      in
      send 0 >>= fun () ->
      read_exactly t 32 >>= fun got ->
      let dt = Unix.gettimeofday () -. t0 in
      Printf.printf "64 MiB sent and digested by the server in %.3f s (%.0f MB/s)\n%!" dt
        (float size /. dt /. 1e6);
      Alcotest.(check string) "md5" expected got;
      E.close t)

let test_lwt_io () =
  with_server "lines:lines" (fun () ->
      Vchan_rs_lwt_unix.open_client ~domid:0 ~port:(port "lines") ()
      >>= fun (ic, oc) ->
      let lines = [ "one"; "two"; String.make 100_000 'z'; "" ] in
      Lwt_list.iter_s
        (fun l ->
          Lwt_io.write_line oc l >>= fun () ->
          Lwt_io.flush oc >>= fun () ->
          Lwt_io.read_line ic >|= fun r -> Alcotest.(check string) "reply" ("ok:" ^ l) r)
        lines
      >>= fun () ->
      Lwt_io.write_line oc "quit" >>= fun () ->
      Lwt_io.flush oc >>= fun () ->
      Lwt_io.read_line ic >>= fun r ->
      Alcotest.(check string) "bye" "bye" r;
      Lwt_io.read_line_opt ic >>= fun r ->
      Alcotest.(check (option string)) "end of stream" None r;
      Lwt_io.close oc >>= fun () -> Lwt_io.close ic)

(* The read view stays intact until the next read, even while the peer
   waits to write more; every byte arrives before the end of the stream,
   though the server closed (and exited) right after writing; writes after
   a close fail with `Closed. *)
let test_read_view () =
  let first = 3000 and rest = 20000 in
  let data = Bytes.to_string (pseudo_random ~seed:7L (first + rest)) in
  with_server (Printf.sprintf "burst:view:%d:%d" first rest) (fun () ->
      connect "view" >>= fun t ->
      (* Wait until the first burst and some of the rest are in the ring. *)
      let rec settle () =
        if E.data_ready t >= 4096 then Lwt.return_unit
        else Lwt_unix.sleep 0.005 >>= settle
      in
      settle () >>= fun () ->
      (E.read t >|= function
       | Ok (`Data v) -> v
       | _ -> fail "expected data")
      >>= fun v1 ->
      let copy = Cstruct.to_string v1 in
      Alcotest.(check bool) "view is the stream's start" true
        (copy = String.sub data 0 (String.length copy));
      Alcotest.(check int) "ring full, nothing freed yet" 0
        (E.data_ready t + Cstruct.length v1 - 4096);
      (* The server is blocked writing; the view must not change. *)
      Lwt_unix.sleep 0.1 >>= fun () ->
      Alcotest.(check string) "view intact until the next read" copy
        (Cstruct.to_string v1);
      read_exactly t (first + rest - String.length copy) >>= fun tail ->
      Alcotest.(check bool) "all data, in order" true (copy ^ tail = data);
      expect_eof t >>= fun () ->
      expect_eof t >>= fun () ->
      Alcotest.(check bool) "peer exited" true (E.state t = E.Exited);
      (E.write t (Cstruct.of_string "late") >|= function
       | Error `Closed -> ()
       | Ok () -> fail "write to a closed peer succeeded"
       | Error e -> fail "write to a closed peer: %s" (Vchan_rs.Error.to_string e))
      >>= fun () ->
      E.close t >>= fun () ->
      E.close t >>= fun () ->
      (E.write t (Cstruct.of_string "x") >|= function
       | Error `Closed -> ()
       | _ -> fail "write after close did not give `Closed")
      >>= fun () ->
      expect_eof t >|= fun () ->
      (* The view still points to mapped memory after the close. *)
      ignore (Cstruct.to_string v1))

(* A view (and a bigarray made from it) keeps the ring mapped after the
   endpoint is closed and collected. *)
let test_view_lifetime () =
  let keep = ref None in
  with_server "echo:life2" (fun () ->
      connect "life2" >>= fun t ->
      E.write t (Cstruct.of_string "still here") >|= get_ok "write"
      >>= fun () ->
      let rec first () =
        E.read t >>= function
        | Ok (`Data v) when Cstruct.length v >= 10 -> Lwt.return v
        | Ok (`Data _) -> first ()
        | _ -> fail "expected data"
      in
      first () >>= fun v ->
      keep := Some (Cstruct.to_bigarray (Cstruct.sub v 0 10));
      E.close t);
  Gc.full_major ();
  Gc.full_major ();
  Gc.full_major ();
  match !keep with
  | None -> Alcotest.fail "no view kept"
  | Some ba ->
      let s = String.init (Bigarray.Array1.dim ba) (Bigarray.Array1.get ba) in
      Alcotest.(check string) "view readable after close and collection"
        "still here" s;
      keep := None;
      Gc.full_major ();
      Gc.full_major ()

let test_packets () =
  let count = 300 in
  with_server (Printf.sprintf "packets:pkt:%d" count) (fun () ->
      connect "pkt" >>= fun t ->
      let rec loop i =
        if i = count then Lwt.return_unit
        else
          let len = 1 + (i * 37 mod 4000) in
          let p = Cstruct.of_bytes (pseudo_random ~seed:(Int64.of_int (i + 1)) len) in
          E.send t p >|= get_ok "send" >>= fun () ->
          let back = Cstruct.create len in
          E.recv t back >>= function
          | Ok (`Data ()) ->
              Alcotest.(check bool) "packet back" true (Cstruct.equal p back);
              loop (i + 1)
          | _ -> fail "recv failed"
      in
      loop 0 >>= fun () ->
      (E.send t (Cstruct.create 100_000) >|= function
       | Error (`Invalid_argument _) | Error `Closed -> ()
       | _ -> fail "a packet larger than the ring was accepted")
      >>= fun () ->
      (E.recv t (Cstruct.create 10) >|= function
       | Ok `Eof -> ()
       | _ -> fail "expected end of stream")
      >>= fun () -> E.close t)

let test_errors () =
  let bad = Vchan_rs.Port.of_string "a/b" in
  Alcotest.(check bool) "bad port refused" true (Result.is_error bad);
  Alcotest.(check bool) "empty port refused" true
    (Result.is_error (Vchan_rs.Port.of_string ""));
  Alcotest.(check string) "port round trip" "A-b_9"
    (Vchan_rs.Port.to_string (port "A-b_9"));
  (* The bad-input table's ports: each refused, the message naming it. *)
  List.iter
    (fun p ->
      match Vchan_rs.Port.of_string p with
      | Ok _ -> fail "port %S accepted" p
      | Error (`Msg m) ->
          Alcotest.(check bool) (Printf.sprintf "%S named in %S" p m) true
            (String.length m > 0 && String.starts_with ~prefix:"invalid vchan port" m))
    [ ""; "/"; ".."; "a b"; "\xc3\xa9"; "a\n"; String.make 256 'p'; String.make 300 'p' ];
  Alcotest.(check bool) "255-character port" true
    (Result.is_ok (Vchan_rs.Port.of_string (String.make 255 'p')));
  (* Timeouts: nan and negative are refused at once; infinity waits, and
     Lwt's timers keep running meanwhile. *)
  List.iter
    (fun timeout ->
      match Lwt_main.run (E.connect ~timeout ~domid:0 ~port:(port "nobody") ()) with
      | _ -> fail "connected to nobody"
      | exception Vchan_rs.Error.Vchan (`Invalid_argument m) ->
          Alcotest.(check bool) ("timeout message: " ^ m) true
            (String.starts_with ~prefix:"invalid timeout" m))
    [ Float.nan; -1.; Float.neg_infinity; -0.001 ];
  (match
     Lwt_main.run
       (Lwt.pick
          [
            (E.connect ~timeout:Float.infinity ~domid:0 ~port:(port "nobody") ()
            >|= fun _ -> `Connected);
            (Lwt_unix.sleep 0.3 >|= fun () -> `Still_waiting);
          ])
   with
  | `Still_waiting -> ()
  | `Connected -> fail "connected to nobody");
  (match E.listen ~domid:1 ~port:(port "sz") ~read_size:(1 lsl 21) () with
  | _ -> Alcotest.fail "a 2 MiB ring was accepted"
  | exception Vchan_rs.Error.Vchan (`Invalid_argument _) -> ());
  (match E.listen ~domid:40000 ~port:(port "sz") () with
  | _ -> Alcotest.fail "domain 40000 was accepted"
  | exception Vchan_rs.Error.Vchan (`Invalid_argument _) -> ());
  (match E.listen ~backend:Vchan_rs_lwt_unix.Backend.Xen ~domid:1 ~port:(port "x") () with
  | t -> Lwt_main.run (E.close t)
  | exception Vchan_rs.Error.Vchan (`Unavailable _ | `System _) -> ());
  (* A second server on the same port is refused while the first lives. *)
  let t = E.listen ~domid:1 ~port:(port "dup") () in
  Alcotest.(check bool) "server" true (E.is_server t);
  Alcotest.(check bool) "waiting" true (E.state t = E.Waiting);
  (match E.listen ~domid:1 ~port:(port "dup") () with
  | _ -> Alcotest.fail "second server accepted"
  | exception Vchan_rs.Error.Vchan `Addr_in_use -> ());
  Lwt_main.run (E.close t);
  Alcotest.(check bool) "closed is exited" true (E.state t = E.Exited);
  match
    Lwt_main.run (E.connect ~timeout:0.2 ~domid:0 ~port:(port "nobody") ())
  with
  | _ -> Alcotest.fail "connected to nobody"
  | exception Vchan_rs.Error.Vchan `Timeout -> ()

(* ---- vchan-cat ---- *)

let contains s sub =
  let n = String.length s and m = String.length sub in
  let rec at i = i + m <= n && (String.sub s i m = sub || at (i + 1)) in
  at 0

let read_file path =
  let ic = open_in_bin path in
  Fun.protect ~finally:(fun () -> close_in ic) (fun () ->
      really_input_string ic (in_channel_length ic))

let vchan_cat () =
  match Sys.getenv_opt "VCHAN_CAT" with
  | Some p when Filename.is_relative p -> Filename.concat (Sys.getcwd ()) p
  | Some p -> p
  | None -> Alcotest.fail "VCHAN_CAT is not set (run through dune test)"

let tmp_root = ref ""
let q = Filename.quote

let write_file path b =
  let oc = open_out_bin path in
  output_bytes oc b;
  close_out oc

(* The listener: `vchan-cat -l 1 PORT < /dev/null > copy` in domain 0 (its
   empty input ends at once, as for every `cmd &` of a script: it must still
   receive until the peer closes); the client: `cat file | vchan-cat -N 0
   PORT` in domain 1, through the shell, which closes at the end of its
   input. *)
let cat_copy size =
  let name = Printf.sprintf "cat%d" size in
  let file = Filename.concat !tmp_root (name ^ ".in")
  and copy = Filename.concat !tmp_root (name ^ ".out") in
  write_file file (pseudo_random ~seed:(Int64.of_int (size + 11)) size);
  let out = Unix.openfile copy [ Unix.O_WRONLY; Unix.O_CREAT; Unix.O_TRUNC ] 0o600 in
  let null = Unix.openfile "/dev/null" [ Unix.O_RDONLY; Unix.O_CLOEXEC ] 0 in
  let cat = vchan_cat () in
  let pid =
    Unix.create_process_env cat
      [| cat; "-l"; "1"; name |]
      (env_with [ ("VCHAN_DOMID", "0") ])
      null out Unix.stderr
  in
  Unix.close null;
  Unix.close out;
  let t0 = Unix.gettimeofday () in
  let rc =
    Sys.command
      (Printf.sprintf "cat %s | VCHAN_DOMID=1 %s -N 0 %s" (q file) (q cat) name)
  in
  let dt = Unix.gettimeofday () -. t0 in
  if rc <> 0 then (try Unix.kill pid Sys.sigkill with _ -> ());
  expect_exit0 "listener" pid;
  Alcotest.(check int) "client exit status" 0 rc;
  Alcotest.(check string) "identical copy" (Digest.to_hex (Digest.file file))
    (Digest.to_hex (Digest.file copy));
  if size >= 1 lsl 20 then
    Printf.printf "vchan-cat: %d bytes in %.3f s (%.0f MB/s)\n%!" size dt
      (float size /. dt /. 1e6);
  Sys.remove file;
  Sys.remove copy

(* Both through one shell line, the receiver with -d (no standard input),
   the sender with -N (it closes at the end of its input). *)
let test_cat_shell () =
  let file = Filename.concat !tmp_root "sh.in"
  and copy = Filename.concat !tmp_root "sh.out" in
  write_file file (pseudo_random 300_000);
  let cat = q (vchan_cat ()) in
  let rc =
    Sys.command
      (Printf.sprintf
         "VCHAN_DOMID=0 %s -l -d 1 sh > %s & VCHAN_DOMID=1 %s -N --timeout 10 \
          0 sh < %s; c=$?; wait $!; l=$?; exit $((c + l))"
         cat (q copy) cat (q file))
  in
  Alcotest.(check int) "exit statuses" 0 rc;
  Alcotest.(check string) "identical copy" (Digest.to_hex (Digest.file file))
    (Digest.to_hex (Digest.file copy))

let test_cat_errors () =
  let cat = q (vchan_cat ()) in
  let run args = Sys.command (Printf.sprintf "%s %s 2>/dev/null </dev/null" cat args) in
  (* Usage errors: status 2, as vchan-xensim's. *)
  List.iter
    (fun (what, args) -> Alcotest.(check int) what 2 (run args))
    [
      ("no arguments", "");
      ("no port", "0");
      ("too many arguments", "0 foo bar");
      ("unknown option", "--bogus 0 foo");
      ("bad port", "0 'a/b'");
      ("bad domid", "x foo");
      ("hexadecimal domid", "0x1 foo");
      ("domid with _", "1_0 foo");
      ("domid with a blank", "' 1' foo");
      ("bad backend", "--backend vmware 0 foo");
      ("bad size", "-l --buffer-size 0 1 foo");
      ("bad timeout", "--timeout -1 0 foo");
      ("bad -q", "-q x 0 foo");
      ("-N with -q", "-N -q 1 0 foo");
    ];
  Alcotest.(check bool) "xen backend unavailable here" true
    (run "--backend xen --timeout 0.1 0 foo" = 1);
  (* Help: -h as --help; plain text through a pipe, even with TERM set
     (cmdliner would page it through groff: overstrike, "\b"). *)
  let help = Filename.concat !tmp_root "help.out" in
  List.iter
    (fun args ->
      Alcotest.(check int) (args ^ ": status") 0
        (Sys.command
           (Printf.sprintf "TERM=xterm %s %s </dev/null | cat > %s" cat args (q help)));
      let text = read_file help in
      Alcotest.(check bool) (args ^ ": the manual") true
        (contains text "vchan-cat - copy standard input and output"
        && contains text "EXIT STATUS");
      Alcotest.(check bool) (args ^ ": no overstrike") false (String.contains text '\b'))
    [ "--help"; "-h"; "-h 0 foo"; "-l -h" ];
  (* The bad-input table's settings: a non-zero exit, and the message names
     the variable or the path. *)
  let err = Filename.concat !tmp_root "cat.err" in
  let says env args expect =
    let rc =
      Sys.command
        (Printf.sprintf
           "env %s %s %s </dev/null >/dev/null 2>%s; s=$?; [ $s -ne 0 ] && grep -qF -- %s %s"
           env cat args (q err) (q expect) (q err))
    in
    Alcotest.(check int) (Printf.sprintf "%s %s: exit <> 0, says %s" env args expect) 0 rc
  in
  says "VCHAN_DOMID=abc" "-l 1 foo" "VCHAN_DOMID=\"abc\"";
  says "VCHAN_DOMID=-1" "--timeout 0.1 0 foo" "VCHAN_DOMID=\"-1\"";
  says "VCHAN_UNIX_DIR=/proc/none" "-l 1 foo" "/proc/none";
  says "VCHAN_UNIX_DIR=/" "-l 1 foo" "vchan rendezvous directory /:";
  says "" ("0 " ^ String.make 300 'p') "invalid vchan port";
  says "" "-- -1 foo" "invalid domain id";
  (* One rule for domain ids, on the command line and in VCHAN_DOMID. *)
  says "VCHAN_DOMID=' 1'" "--timeout 0.1 0 foo" "VCHAN_DOMID=\" 1\"";
  says "VCHAN_DOMID=0x1" "--timeout 0.1 0 foo" "VCHAN_DOMID=\"0x1\"";
  says "" "0x1 foo" "invalid domain id \"0x1\"";
  Alcotest.(check int) "no server: timeout" 1
    (Sys.command
       (Printf.sprintf "VCHAN_DOMID=1 %s --timeout 0.2 0 nobody 2>/dev/null </dev/null" cat));
  (* The timeout says what it waited for, and -v adds no statistics to a
     failure. *)
  let err = Filename.concat !tmp_root "timeout.err" in
  ignore
    (Sys.command
       (Printf.sprintf "VCHAN_DOMID=1 %s -v --timeout 0.2 0 nobody 2>%s </dev/null" cat
          (q err)));
  let text = read_file err in
  List.iter
    (fun part ->
      Alcotest.(check bool) (Printf.sprintf "timeout message has %S: %s" part text) true
        (contains text part))
    [
      "domain 1 to find the server of domain 0 on port nobody";
      "backend unix";
      "rendezvous /local/domain/0/data/vchan/1/nobody in ";
      "VCHAN_DOMID";
      "--backend xen";
    ];
  Alcotest.(check bool) "no statistics after a failure" false
    (contains text "bytes");
  (* On the xen backend (Xen's libraries simulated by xensim; this process
     is domain 7) the message names this domain's id, from xenstore. *)
  let xensim =
    match Sys.getenv_opt "VCHAN_XENSIM" with
    | Some p when Filename.is_relative p -> Filename.concat (Sys.getcwd ()) p
    | Some p -> p
    | None -> Alcotest.fail "VCHAN_XENSIM is not set (run through dune test)"
  in
  let xerr = Filename.concat !tmp_root "xen-timeout.err" in
  let rc =
    Sys.command
      (Printf.sprintf
         "VCHAN_DOMID=7 VCHAN_UNIX_DIR=%s %s -- %s --backend xen --timeout 0.2 0 nobody 2>%s </dev/null"
         (q (Filename.concat !tmp_root "xen-rv")) (q xensim) cat (q xerr))
  in
  Alcotest.(check int) "xen backend, no server: timeout" 1 rc;
  let text = read_file xerr in
  Alcotest.(check bool)
    (Printf.sprintf "xen backend: the message names domain 7: %s" text)
    true
    (contains text "domain 7 to find the server of domain 0 on port nobody");
  Alcotest.(check bool) "version" true
    (Sys.command (Printf.sprintf "%s --version | grep -q '^[0-9]'" cat) = 0);
  (* A listener whose output is a pipe nobody reads ends at once (EPIPE,
     after at most a ring and a pipe buffer) and closes the vchan cleanly
     (no leftovers): a client with more to send sees its peer go and
     fails. *)
  let file = Filename.concat !tmp_root "gone.in" in
  write_file file (pseudo_random (4 * 1024 * 1024));
  Alcotest.(check bool) "peer gone" true
    (Sys.command
       (Printf.sprintf
          "(trap '' PIPE; VCHAN_DOMID=0 %s -l 1 gone </dev/null 2>/dev/null | true) & VCHAN_DOMID=1 %s \
           0 gone < %s 2>/dev/null; c=$?; wait; exit $c"
          cat cat (q file))
     <> 0)

let contains s sub =
  let n = String.length sub in
  let rec at i = i + n <= String.length s && (String.sub s i n = sub || at (i + 1)) in
  at 0

(* A listener `vchan-cat -l -d 1 NAME` writing to a pipe, and a sender
   `vchan-cat 0 NAME` reading from one (its standard error: [sender_err]),
   connected: "hello" went through. Returns (listener, sender, the sender's
   input, the listener's output). *)
let cat_pair ?(sender_err = Unix.stderr) name =
  let cat = vchan_cat () in
  let out_r, out_w = Unix.pipe ~cloexec:true () in
  let listener =
    Unix.create_process_env cat
      [| cat; "-l"; "-d"; "1"; name |]
      (env_with [ ("VCHAN_DOMID", "0") ])
      Unix.stdin out_w Unix.stderr
  in
  Unix.close out_w;
  let in_r, in_w = Unix.pipe ~cloexec:true () in
  let sender =
    Unix.create_process_env cat
      [| cat; "--timeout"; "10"; "0"; name |]
      (env_with [ ("VCHAN_DOMID", "1") ])
      in_r Unix.stdout sender_err
  in
  Unix.close in_r;
  ignore (Unix.write_substring in_w "hello" 0 5 : int);
  let buf = Bytes.create 5 in
  let rec read_all off =
    if off < 5 then
      match Unix.read out_r buf off (5 - off) with
      | 0 -> fail "the listener ended early"
      | n -> read_all (off + n)
  in
  read_all 0;
  Alcotest.(check string) "bytes through" "hello" (Bytes.to_string buf);
  (listener, sender, in_w, out_r)

(* A receiver SIGKILLed while the sender still sends: the sender says its
   peer vanished (not that it closed), whichever of its reader or writer
   notices first. *)
let test_cat_receiver_killed () =
  Sys.set_signal Sys.sigpipe Sys.Signal_ignore;
  let err_r, err_w = Unix.pipe ~cloexec:true () in
  let listener, sender, in_w, out_r = cat_pair ~sender_err:err_w "rkilled" in
  Unix.close err_w;
  Unix.kill listener Sys.sigkill;
  ignore (waitpid listener);
  (* More to send: the sender's writer meets the dead peer too. *)
  let chunk = Bytes.make 65536 'x' in
  (try
     for _ = 1 to 64 do
       ignore (Unix.write in_w chunk 0 65536 : int)
     done
   with Unix.Unix_error _ -> ());
  Unix.close in_w;
  let st = waitpid sender in
  let err = Buffer.create 256 in
  let b = Bytes.create 4096 in
  let rec drain () =
    match Unix.read err_r b 0 4096 with
    | 0 -> ()
    | n ->
        Buffer.add_subbytes err b 0 n;
        drain ()
  in
  drain ();
  Unix.close err_r;
  Unix.close out_r;
  let msg = Buffer.contents err in
  Alcotest.(check bool) "sender fails" true (st = Unix.WEXITED 1);
  Alcotest.(check bool) ("says vanished: " ^ msg) true
    (contains msg "vanished")

(* A sender SIGKILLed mid-stream: the receiving vchan-cat must notice and
   fail (a vanished peer is not a close). Its promptness is a property of
   the death watch, not of this machine's load, so the test does not time
   it: it only bounds the wait, and a listener still running after 30 s
   has missed the death (it is killed and the case fails). *)
let test_cat_peer_killed () =
  (* Once bytes came through, both are connected: kill the sender, whose
     standard input is still open. *)
  let listener, sender, in_w, out_r = cat_pair "killed" in
  Unix.kill sender Sys.sigkill;
  ignore (waitpid sender);
  let deadline = Unix.gettimeofday () +. 30.0 in
  let rec wait_listener () =
    match Unix.waitpid [ Unix.WNOHANG ] listener with
    | 0, _ when Unix.gettimeofday () < deadline ->
        Unix.sleepf 0.01;
        wait_listener ()
    | 0, _ ->
        Unix.kill listener Sys.sigkill;
        ignore (waitpid listener);
        None
    | _, st -> Some st
    | exception Unix.Unix_error (Unix.EINTR, _, _) -> wait_listener ()
  in
  let st = wait_listener () in
  Unix.close in_w;
  Unix.close out_r;
  Alcotest.(check bool) "listener noticed the death and failed" true
    (st = Some (Unix.WEXITED 1))

(* Every case meets its servers in a rendezvous directory of its own, which
   must hold nothing but empty directories once the case is over (after the
   GC has finalised what the case dropped): each case checks its own
   clean-up, whatever ran before it. *)
let rec files dir =
  if not (Sys.file_exists dir) then []
  else
    Array.fold_left
      (fun acc f ->
        let p = Filename.concat dir f in
        if Sys.is_directory p then files p @ acc else p :: acc)
      [] (Sys.readdir dir)

(* ---- vchan-cat: half-close, signals, EPIPE, --timeout with -l ---- *)

(* vchan-cat ARGS in domain [domid], with these standard descriptors. *)
let spawn_cat ?(env = []) ~domid ~stdin ~stdout ~stderr args =
  let cat = vchan_cat () in
  Unix.create_process_env cat
    (Array.of_list (cat :: args))
    (env_with (("VCHAN_DOMID", string_of_int domid) :: env))
    stdin stdout stderr

let pipe () = Unix.pipe ~cloexec:true ()
let dev_null flags = Unix.openfile "/dev/null" (Unix.O_CLOEXEC :: flags) 0

let write_string fd s =
  let n = Unix.write_substring fd s 0 (String.length s) in
  if n <> String.length s then fail "short write"

(* Unix.read, again when a signal (SIGCHLD, for Lwt's handler) interrupts
   it. *)
let rec read fd buf off len =
  try Unix.read fd buf off len with Unix.Unix_error (Unix.EINTR, _, _) -> read fd buf off len

(* [n] bytes of [fd], or fewer at its end. *)
let read_upto fd n =
  let buf = Bytes.create n in
  let rec go off =
    if off = n then off else match read fd buf off (n - off) with 0 -> off | k -> go (off + k)
  in
  Bytes.sub_string buf 0 (go 0)

(* All of [fd], to its end; closes it. *)
let read_to_end fd =
  let b = Buffer.create 4096 and chunk = Bytes.create 65536 in
  let rec go () =
    match read fd chunk 0 65536 with
    | 0 -> ()
    | n ->
        Buffer.add_subbytes b chunk 0 n;
        go ()
  in
  go ();
  Unix.close fd;
  Buffer.contents b

let exit_status what pid =
  match waitpid pid with
  | Unix.WEXITED n -> n
  | Unix.WSIGNALED n | Unix.WSTOPPED n -> fail "%s killed by signal %d" what n

(* The files of the case's rendezvous directory but its marker. *)
let rendezvous_files () =
  let dir = Sys.getenv "VCHAN_UNIX_DIR" in
  List.filter (fun p -> Filename.basename p <> ".vchan-root") (files dir)

(* A server `vchan-cat -l -N 1 PORT` whose input and output we hold, and a
   client `vchan-cat CLIENT_ARGS 0 PORT` whose input is "req\n", then its
   end; the request reaches the server. *)
let request name client_args =
  let srv_in, to_srv = pipe () and from_srv, srv_out = pipe () in
  let server =
    spawn_cat ~domid:0 ~stdin:srv_in ~stdout:srv_out ~stderr:Unix.stderr
      [ "-l"; "-N"; "1"; name ]
  in
  Unix.close srv_in;
  Unix.close srv_out;
  let cli_in, to_cli = pipe () and from_cli, cli_out = pipe () in
  let err_r, err_w = pipe () in
  let client =
    spawn_cat ~domid:1 ~stdin:cli_in ~stdout:cli_out ~stderr:err_w
      (client_args @ [ "--timeout"; "10"; "0"; name ])
  in
  List.iter Unix.close [ cli_in; cli_out; err_w ];
  write_string to_cli "req\n";
  Unix.close to_cli;
  Alcotest.(check string) "the request reached the server" "req\n" (read_upto from_srv 4);
  (server, to_srv, from_srv, client, from_cli, err_r)

(* Without -N or -q (or with a negative -q), the client keeps receiving
   after its input ended: the reply, sent only once the request arrived,
   comes through, and it exits when the server closes. *)
let test_cat_reply_after_eof client_args () =
  let server, to_srv, from_srv, client, from_cli, err_r = request "rr" client_args in
  write_string to_srv "reply\n";
  Unix.close to_srv;
  Alcotest.(check string) "the client received the reply" "reply\n" (read_to_end from_cli);
  Alcotest.(check int) "client status" 0 (exit_status "client" client);
  Alcotest.(check int) "server status" 0 (exit_status "server" server);
  Unix.close from_srv;
  Alcotest.(check string) "client says nothing" "" (read_to_end err_r)

(* With -N (or -q 0), the client closes once the server read its input,
   without waiting for a reply: it exits while the server, still connected,
   has sent nothing; having sent its input, it does not warn. *)
let test_cat_close_at_eof client_args () =
  let server, to_srv, from_srv, client, from_cli, err_r = request "ne" client_args in
  Alcotest.(check int) "client status, server still connected" 0
    (exit_status "client" client);
  Alcotest.(check string) "the client received nothing" "" (read_to_end from_cli);
  Alcotest.(check string) "client says nothing" "" (read_to_end err_r);
  Unix.close to_srv;
  ignore (exit_status "server" server : int);
  Unix.close from_srv

(* A sender `vchan-cat ARGS PORT < input` in domain [domid], its standard
   error a pipe; returns it and that pipe. By default the server `vchan-cat
   -l -N 1 PORT` in domain 0, and a file of 4 MiB. *)
let big_sender ?(domid = 0) ?(args = [ "-l"; "-N"; "1" ]) ?input name =
  let file =
    match input with
    | Some path -> path
    | None ->
        let file = Filename.concat !tmp_root (name ^ ".in") in
        write_file file (pseudo_random (4 * 1024 * 1024));
        file
  in
  let input = Unix.openfile file [ Unix.O_RDONLY; Unix.O_CLOEXEC ] 0 in
  let err_r, err_w = pipe () in
  let pid =
    spawn_cat ~domid ~stdin:input ~stdout:Unix.stdout ~stderr:err_w (args @ [ name ])
  in
  Unix.close input;
  Unix.close err_w;
  (pid, err_r)

(* The /dev/null trap with -N: a receiver whose input is empty closes at
   once, and says so (exit 0), while the sender (`vchan-cat -l -N 1 PORT <
   /dev/zero`: it cannot be done first) still sends. The sender then ends
   on a close, not a vanished peer: status 1 when the close met it
   writing, 0 when it met it reading its input (as nc exits when the remote
   closes, whatever its input still holds). *)
let test_cat_dev_null_warning () =
  let sender, sender_err = big_sender ~input:"/dev/zero" "devnull" in
  let null_in = dev_null [ Unix.O_RDONLY ] and null_out = dev_null [ Unix.O_WRONLY ] in
  let err_r, err_w = pipe () in
  let receiver =
    spawn_cat ~domid:1 ~stdin:null_in ~stdout:null_out ~stderr:err_w
      [ "-N"; "--timeout"; "10"; "0"; "devnull" ]
  in
  List.iter Unix.close [ null_in; null_out; err_w ];
  Alcotest.(check int) "receiver status" 0 (exit_status "receiver" receiver);
  let warning = read_to_end err_r in
  Alcotest.(check bool) ("the receiver warns: " ^ warning) true
    (contains warning "warning: closing the vchan at the end of standard input");
  let status = exit_status "sender" sender and err = read_to_end sender_err in
  Alcotest.(check bool) (Printf.sprintf "the sender saw a close: %d, %s" status err) true
    (status = 0 && err = ""
    || status = 1 && contains err "the peer closed the vchan before all of stdin was sent")

(* A receiver `vchan-cat -l -d 1 PORT` whose output we read [first] bytes
   of, from a sender `vchan-cat 0 PORT < file` ([big_sender], domain 1).
   Returns (receiver, its output, sender, the sender's standard error). *)
let transfer_started name ~first =
  let out_r, out_w = pipe () in
  let null_in = dev_null [ Unix.O_RDONLY ] in
  let sender, sender_err = big_sender ~domid:1 ~args:[ "--timeout"; "10"; "0" ] name in
  let receiver =
    spawn_cat ~domid:0 ~stdin:null_in ~stdout:out_w ~stderr:Unix.stderr
      [ "-l"; "-d"; "1"; name ]
  in
  Unix.close null_in;
  Unix.close out_w;
  Alcotest.(check int) "first bytes through" first (String.length (read_upto out_r first));
  (receiver, out_r, sender, sender_err)

(* SIGINT or SIGTERM to a receiver mid-transfer (both blocked: we stopped
   reading its output): it closes the vchan and exits 128 + the signal;
   the sender sees a close (not a vanished peer) with its data unsent. *)
let test_cat_signal_receiver (signal, status) () =
  let receiver, out_r, sender, sender_err = transfer_started "sigr" ~first:65536 in
  Unix.kill receiver signal;
  Alcotest.(check int) "receiver status" status (exit_status "receiver" receiver);
  Alcotest.(check int) "sender status" 1 (exit_status "sender" sender);
  let err = read_to_end sender_err in
  Alcotest.(check bool) ("the sender saw a close: " ^ err) true
    (contains err "the peer closed the vchan before all of stdin was sent");
  Unix.close out_r;
  Alcotest.(check (list string)) "no rendezvous file left" [] (rendezvous_files ())

(* The same signals to the sender mid-transfer: the receiver sees a close
   (it exits 0, having written what came); the sender exits 128 + the
   signal. *)
let test_cat_signal_sender (signal, status) () =
  let receiver, out_r, sender, sender_err = transfer_started "sigs" ~first:65536 in
  Unix.kill sender signal;
  Alcotest.(check int) "sender status" status (exit_status "sender" sender);
  Alcotest.(check string) "sender says nothing" "" (read_to_end sender_err);
  ignore (read_to_end out_r : string);
  Alcotest.(check int) "receiver status" 0 (exit_status "receiver" receiver);
  Alcotest.(check (list string)) "no rendezvous file left" [] (rendezvous_files ())

(* SIGTERM to a server still waiting for its client: its rendezvous, there
   while it listened, is removed. *)
let test_cat_signal_listening () =
  let err_r, err_w = pipe () in
  let null_in = dev_null [ Unix.O_RDONLY ] in
  let server =
    spawn_cat ~domid:0 ~stdin:null_in ~stdout:Unix.stdout ~stderr:err_w
      [ "-l"; "-v"; "1"; "sigl" ]
  in
  Unix.close null_in;
  Unix.close err_w;
  let said = "vchan-cat: listening for domain 1 on port sigl\n" in
  Alcotest.(check string) "listening" said (read_upto err_r (String.length said));
  Alcotest.(check bool) "its rendezvous is there" true (rendezvous_files () <> []);
  Unix.kill server Sys.sigterm;
  Alcotest.(check int) "status" 143 (exit_status "server" server);
  Alcotest.(check string) "nothing more said" "" (read_to_end err_r);
  Alcotest.(check (list string)) "no rendezvous file left" [] (rendezvous_files ())

(* Its output's reader gone (EPIPE), a receiver exits quietly with 141, as
   cat killed by SIGPIPE; the sender sees a close. *)
let test_cat_epipe () =
  let err_r, err_w = pipe () in
  let out_r, out_w = pipe () in
  let null_in = dev_null [ Unix.O_RDONLY ] in
  let sender, sender_err = big_sender "epipe" in
  let receiver =
    spawn_cat ~domid:1 ~stdin:null_in ~stdout:out_w ~stderr:err_w
      [ "-d"; "--timeout"; "10"; "0"; "epipe" ]
  in
  List.iter Unix.close [ null_in; out_w; err_w ];
  Alcotest.(check int) "head -c 10" 10 (String.length (read_upto out_r 10));
  Unix.close out_r;
  Alcotest.(check int) "receiver status" 141 (exit_status "receiver" receiver);
  Alcotest.(check string) "the receiver says nothing" "" (read_to_end err_r);
  Alcotest.(check int) "sender status" 1 (exit_status "sender" sender);
  ignore (read_to_end sender_err : string)

(* --timeout applies to a server waiting for its client: it gives up, says
   what it waited for, and removes its rendezvous. (timeout(1) only keeps a
   server that ignores --timeout from hanging the suite: status 124.) *)
let test_cat_listen_timeout () =
  let err = Filename.concat !tmp_root "listen-timeout.err" in
  Alcotest.(check int) "status" 1
    (Sys.command
       (Printf.sprintf
          "VCHAN_DOMID=0 timeout 60 %s -l --timeout 0.2 1 nobody </dev/null 2>%s"
          (q (vchan_cat ())) (q err)));
  let text = read_file err in
  Alcotest.(check bool) ("says it timed out waiting for the client: " ^ text) true
    (contains text
       "timed out after 0.2 s waiting for domain 1 to connect to domain 0 on port nobody")

(* The rendezvous directory a message names is the library's: with
   $TMPDIR/vchan-UID under TMPDIR (VCHAN_UNIX_DIR and XDG_RUNTIME_DIR
   unset). *)
let test_cat_message_dir () =
  let tmpdir = Filename.concat !tmp_root "tmpdir" in
  Unix.mkdir tmpdir 0o700;
  let err = Filename.concat !tmp_root "dir.err" in
  ignore
    (Sys.command
       (Printf.sprintf
          "env -u VCHAN_UNIX_DIR -u XDG_RUNTIME_DIR TMPDIR=%s VCHAN_DOMID=1 %s \
           --timeout 0.1 0 nobody </dev/null 2>%s"
          (q tmpdir) (q (vchan_cat ())) (q err)));
  let text = read_file err in
  let dir = Printf.sprintf "%s/vchan-%d/store" tmpdir (Unix.getuid ()) in
  Alcotest.(check bool) (Printf.sprintf "names %s: %s" dir text) true (contains text dir)

let cases = ref 0

let isolated f () =
  incr cases;
  let dir = Filename.concat !tmp_root (Printf.sprintf "vchan-%d" !cases) in
  Unix.putenv "VCHAN_UNIX_DIR" dir;
  f ();
  Gc.full_major ();
  Gc.full_major ();
  (* The marker of a rendezvous directory stays. *)
  let marker = Filename.concat dir ".vchan-root" in
  Alcotest.(check (list string)) "nothing left in the rendezvous directory" []
    (List.filter (fun p -> p <> marker) (files dir))

let () =
  match Sys.getenv_opt child_var with
  | Some role -> run_child role
  | None ->
      tmp_root := Test_harness.unix_backend_root ();
      use_engine ();
      let endpoint =
        ( "endpoint",
          [
            ("echo", test_echo);
            ("capitalising echo", test_caps);
            ("full duplex, one descriptor", test_duplex);
            ("read_into between views", test_read_into);
            ("64 MiB with MD5", test_big_digest);
            ("Lwt_io open_server/open_client", test_lwt_io);
            ("read view, end of stream, write after close", test_read_view);
            ("views outlive the endpoint", test_view_lifetime);
            ("close acknowledges the last view (the peer's linger)", test_close_acknowledges);
            ("packets", test_packets);
            ("errors", test_errors);
          ] )
      in
      let cat =
        ( "vchan-cat",
          List.map
            (fun size -> (Printf.sprintf "%d bytes" size, fun () -> cat_copy size))
            [ 0; 1; 4095; 4096; (1 lsl 20) + 7; 100 * 1024 * 1024 ]
          @ [
              ("shell pipeline, -d receiver", test_cat_shell);
              ("errors", test_cat_errors);
              ("peer killed: non-zero status", test_cat_peer_killed);
              ("receiver killed: sender says vanished", test_cat_receiver_killed);
              ("reply after the end of stdin", test_cat_reply_after_eof []);
              ("reply after the end of stdin, -q -1", test_cat_reply_after_eof [ "-q-1" ]);
              ("-N: close at the end of stdin", test_cat_close_at_eof [ "-N" ]);
              ("-q 0: close at the end of stdin", test_cat_close_at_eof [ "-q"; "0" ]);
              ("-N with stdin /dev/null warns", test_cat_dev_null_warning);
              ("SIGTERM to the receiver", test_cat_signal_receiver (Sys.sigterm, 143));
              ("SIGINT to the receiver", test_cat_signal_receiver (Sys.sigint, 130));
              ("SIGTERM to the sender", test_cat_signal_sender (Sys.sigterm, 143));
              ("SIGINT to the sender", test_cat_signal_sender (Sys.sigint, 130));
              ("SIGTERM while listening", test_cat_signal_listening);
              ("EPIPE on stdout: quiet, 141", test_cat_epipe);
              ("--timeout with -l", test_cat_listen_timeout);
              ("rendezvous directory in messages", test_cat_message_dir);
            ] )
      in
      (* Under the engine, the endpoint group only (vchan-cat has its own
         engine, Lwt's default). *)
      Test_harness.run
        (if under_engine then "vchan-rs under Engine" else "vchan-rs")
        ((if under_engine then [ endpoint ] else [ endpoint; cat ])
        |> List.map (fun (group, cases) ->
               (group, List.map (fun (name, f) -> (name, isolated f)) cases)))
