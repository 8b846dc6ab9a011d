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
   test/dune runs it both ways. *)
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

(* The listener: `vchan-cat -l 1 PORT > copy` in domain 0, its standard
   input a pipe we keep open (a vchan has no half-close: the receiving side
   must not reach the end of its input first); the client:
   `cat file | vchan-cat 0 PORT` in domain 1, through the shell. *)
let cat_copy size =
  let name = Printf.sprintf "cat%d" size in
  let file = Filename.concat !tmp_root (name ^ ".in")
  and copy = Filename.concat !tmp_root (name ^ ".out") in
  write_file file (pseudo_random ~seed:(Int64.of_int (size + 11)) size);
  let out = Unix.openfile copy [ Unix.O_WRONLY; Unix.O_CREAT; Unix.O_TRUNC ] 0o600 in
  let pin, pout = Unix.pipe ~cloexec:true () in
  let cat = vchan_cat () in
  let pid =
    Unix.create_process_env cat
      [| cat; "-l"; "1"; name |]
      (env_with [ ("VCHAN_DOMID", "0") ])
      pin out Unix.stderr
  in
  Unix.close pin;
  Unix.close out;
  let t0 = Unix.gettimeofday () in
  let rc =
    Sys.command
      (Printf.sprintf "cat %s | VCHAN_DOMID=1 %s 0 %s" (q file) (q cat) name)
  in
  let dt = Unix.gettimeofday () -. t0 in
  if rc <> 0 then (try Unix.kill pid Sys.sigkill with _ -> ());
  expect_exit0 "listener" pid;
  Unix.close pout;
  Alcotest.(check int) "client exit status" 0 rc;
  Alcotest.(check string) "identical copy" (Digest.to_hex (Digest.file file))
    (Digest.to_hex (Digest.file copy));
  if size >= 1 lsl 20 then
    Printf.printf "vchan-cat: %d bytes in %.3f s (%.0f MB/s)\n%!" size dt
      (float size /. dt /. 1e6);
  Sys.remove file;
  Sys.remove copy

(* Both through one shell line, the receiver with -d (no standard input). *)
let test_cat_shell () =
  let file = Filename.concat !tmp_root "sh.in"
  and copy = Filename.concat !tmp_root "sh.out" in
  write_file file (pseudo_random 300_000);
  let cat = q (vchan_cat ()) in
  let rc =
    Sys.command
      (Printf.sprintf
         "VCHAN_DOMID=0 %s -l -d 1 sh > %s & VCHAN_DOMID=1 %s --timeout 10 0 \
          sh < %s; c=$?; wait $!; l=$?; exit $((c + l))"
         cat (q copy) cat (q file))
  in
  Alcotest.(check int) "exit statuses" 0 rc;
  Alcotest.(check string) "identical copy" (Digest.to_hex (Digest.file file))
    (Digest.to_hex (Digest.file copy))

let test_cat_errors () =
  let cat = q (vchan_cat ()) in
  let run args = Sys.command (Printf.sprintf "%s %s 2>/dev/null </dev/null" cat args) in
  Alcotest.(check bool) "no arguments" true (run "" <> 0);
  Alcotest.(check bool) "bad port" true (run "0 'a/b'" <> 0);
  Alcotest.(check bool) "bad domid" true (run "x foo" <> 0);
  Alcotest.(check bool) "bad backend" true (run "--backend vmware 0 foo" <> 0);
  Alcotest.(check bool) "bad size" true (run "-l --buffer-size 0 1 foo" <> 0);
  Alcotest.(check bool) "xen backend unavailable here" true
    (run "--backend xen --timeout 0.1 0 foo" <> 0);
  Alcotest.(check int) "help" 0
    (Sys.command (Printf.sprintf "%s --help=plain >/dev/null" cat));
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
  (* A listener whose output is a pipe nobody reads fails at once (EPIPE,
     SIGPIPE ignored, after at most a ring and a pipe buffer) and closes the
     vchan cleanly (no leftovers): a client with more to send sees its peer
     go and fails. (A listener that merely closed when
     its empty input ended could read everything first on a loaded machine,
     and the client would rightly succeed.) *)
  let file = Filename.concat !tmp_root "gone.in" in
  write_file file (pseudo_random (4 * 1024 * 1024));
  Alcotest.(check bool) "peer vanished" true
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

(* A sender SIGKILLed mid-stream: the receiving vchan-cat must notice
   within a second and fail (a vanished peer is not a close). *)
let test_cat_peer_killed () =
  (* Once bytes came through, both are connected: kill the sender, whose
     standard input is still open. *)
  let listener, sender, in_w, out_r = cat_pair "killed" in
  Unix.kill sender Sys.sigkill;
  let killed_at = Unix.gettimeofday () in
  ignore (waitpid sender);
  let st = waitpid listener in
  let lag = Unix.gettimeofday () -. killed_at in
  Unix.close in_w;
  Unix.close out_r;
  Alcotest.(check bool) "listener fails" true (st = Unix.WEXITED 1);
  Alcotest.(check bool) (Printf.sprintf "noticed within 1 s (%.3f s)" lag) true
    (lag < 1.0)

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
            ] )
      in
      (* Under the engine, the endpoint group only (vchan-cat has its own
         engine, Lwt's default). *)
      Test_harness.run
        (if under_engine then "vchan-rs under Engine" else "vchan-rs")
        ((if under_engine then [ endpoint ] else [ endpoint; cat ])
        |> List.map (fun (group, cases) ->
               (group, List.map (fun (name, f) -> (name, isolated f)) cases)))
