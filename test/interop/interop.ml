(* vchan-cat (our unix backend) against Xen's C libxenvchan and its
   vchan-socket-proxy, running on the simulated Xen libraries (xensim). Every
   program is a separate process; the files moved are compared by SHA-256. *)

let fail fmt = Printf.ksprintf (fun s -> Alcotest.fail s) fmt
let mib = 1024 * 1024

(* Xen's vchan-socket-proxy: Debian's xen-utils-<version> puts its tools in
   /usr/lib/xen-<version>/bin; the newest installed. *)
let proxy =
  lazy
    (let found =
       (try Sys.readdir "/usr/lib" with Sys_error _ -> [||])
       |> Array.to_list
       |> List.filter (String.starts_with ~prefix:"xen-")
       |> List.map (fun d -> Filename.concat "/usr/lib" (Filename.concat d "bin/vchan-socket-proxy"))
       |> List.filter Sys.file_exists
       |> List.sort (fun a b -> compare b a)
     in
     match found with
     | p :: _ -> p
     | [] -> fail "no /usr/lib/xen-*/bin/vchan-socket-proxy (install xen-utils)")

let absolute var =
  match Sys.getenv_opt var with
  | Some p when Filename.is_relative p -> Filename.concat (Sys.getcwd ()) p
  | Some p -> p
  | None -> fail "%s is not set (run through dune test)" var

let cat = lazy (absolute "VCHAN_CAT")
let xensim = lazy (absolute "VCHAN_XENSIM")
let xvchan = lazy (absolute "XVCHAN")

(* A fresh rendezvous directory (and scratch space) per test. *)
let root = ref ""

let fresh_dir name =
  let d = Filename.concat !root name in
  Unix.mkdir d 0o700;
  d

let env_with dir domid =
  let keep =
    Array.to_list (Unix.environment ())
    |> List.filter (fun kv ->
           not
             (List.exists
                (fun p -> String.length kv > String.length p
                          && String.sub kv 0 (String.length p) = p)
                [ "VCHAN_UNIX_DIR="; "VCHAN_DOMID="; "VCHAN_BACKEND=" ]))
  in
  Array.of_list
    (Printf.sprintf "VCHAN_UNIX_DIR=%s" (Filename.concat dir "vchan")
    :: Printf.sprintf "VCHAN_DOMID=%d" domid
    :: "VCHAN_BACKEND=unix" :: keep)

let openr p = Unix.openfile p [ Unix.O_RDONLY; Unix.O_CLOEXEC ] 0
let openw p = Unix.openfile p [ Unix.O_WRONLY; Unix.O_CREAT; Unix.O_TRUNC; Unix.O_CLOEXEC ] 0o600

(* Run [argv] in domain [domid] with the given standard descriptors. *)
let spawn dir domid ~stdin ~stdout argv =
  let err = openw (Filename.concat dir (Printf.sprintf "%s-%d.err" (Filename.basename argv.(0)) domid)) in
  let pid = Unix.create_process_env argv.(0) argv (env_with dir domid) stdin stdout err in
  Unix.close err;
  pid

(* A C program on Debian's libxenvchan, under vchan-xensim. *)
let under_xensim args = Array.of_list (Lazy.force xensim :: "--" :: args)

let rec waitpid_nohang pid =
  match Unix.waitpid [ Unix.WNOHANG ] pid with
  | r -> r
  | exception Unix.Unix_error (Unix.EINTR, _, _) -> waitpid_nohang pid

(* Wait for [pid] at most [timeout] seconds; kill it after that. *)
let wait_exit ?(timeout = 60.) what pid =
  let deadline = Unix.gettimeofday () +. timeout in
  let rec go () =
    match waitpid_nohang pid with
    | 0, _ when Unix.gettimeofday () > deadline ->
        (try Unix.kill pid Sys.sigkill with _ -> ());
        ignore (Unix.waitpid [] pid);
        fail "%s did not finish within %.0f s" what timeout
    | 0, _ -> Unix.sleepf 0.01; go ()
    | _, Unix.WEXITED n -> n
    | _, (Unix.WSIGNALED n | Unix.WSTOPPED n) -> fail "%s killed by signal %d" what n
  in
  go ()

let expect_ok what pid = Alcotest.(check int) (what ^ " exit status") 0 (wait_exit what pid)

let rec wait_for_file ?(timeout = 10.) p =
  if not (Sys.file_exists p) then
    if timeout <= 0. then fail "%s never appeared" p
    else (Unix.sleepf 0.005; wait_for_file ~timeout:(timeout -. 0.005) p)

let rendezvous dir port =
  Printf.sprintf "%s/vchan/store/local/domain/0/data/vchan/1/%s/event-channel" dir port

let xs_path port = Printf.sprintf "/local/domain/0/data/vchan/1/%s" port

let sha256 file =
  let ic = Unix.open_process_args_in "sha256sum" [| "sha256sum"; file |] in
  let line = input_line ic in
  ignore (Unix.close_process_in ic);
  String.sub line 0 64

let random_file dir name size =
  let p = Filename.concat dir name in
  let rc = Sys.command (Printf.sprintf "head -c %d /dev/urandom > %s" size (Filename.quote p)) in
  if rc <> 0 then fail "cannot make %s" p;
  p

let file_size p = (Unix.stat p).Unix.st_size

let same what a b = Alcotest.(check string) what (sha256 a) (sha256 b)

(* vchan-cat's standard input: [file], then held open until [until] holds
   [size] bytes (a vchan has no half-close: a vchan-cat -N that reached the
   end of its input closes, so a full-duplex copy keeps it open until the
   other direction is done). *)
let feeder dir file ~until ~size =
  let r, w = Unix.pipe ~cloexec:true () in
  let script =
    Printf.sprintf "cat %s && while [ \"$(stat -c %%s %s)\" -lt %d ]; do sleep 0.02; done"
      (Filename.quote file) (Filename.quote until) size
  in
  let pid = spawn dir 9 ~stdin:Unix.stdin ~stdout:w [| "/bin/sh"; "-c"; script |] in
  Unix.close w;
  (r, pid)

(* A held-open standard input that never delivers anything. *)
let silent_stdin () =
  let r, w = Unix.pipe ~cloexec:true () in
  (r, w)

(* ---- C libxenvchan (xvchan) and vchan-cat, 64 MiB each way at once ---- *)

let duplex ~cat_serves () =
  let dir = fresh_dir (if cat_serves then "duplex-cat-server" else "duplex-c-server") in
  let size = 64 * mib in
  let a = random_file dir "a" size and b = random_file dir "b" size in
  let out_a = Filename.concat dir "a.out" and out_b = Filename.concat dir "b.out" in
  let port = "duplex" in
  let c_in = openr a and c_out = openw out_a in
  (* The C side sends [a] and keeps reading until the peer closes. *)
  let c_argv server =
    if server then [ Lazy.force xvchan; "server"; "1"; xs_path port; "65536"; "65536"; "stream" ]
    else [ Lazy.force xvchan; "client"; "0"; xs_path port; "stream" ]
  in
  let cat_in, feeder_pid = feeder dir b ~until:out_b ~size in
  let cat_out = openw out_b in
  let cat_argv =
    if cat_serves then [| Lazy.force cat; "-N"; "-l"; "1"; port |]
    else [| Lazy.force cat; "-N"; "--timeout"; "10"; "0"; port |]
  in
  let t0 = Unix.gettimeofday () in
  let c_pid, cat_pid =
    if cat_serves then begin
      let cat_pid = spawn dir 0 ~stdin:cat_in ~stdout:cat_out cat_argv in
      wait_for_file (rendezvous dir port);
      (spawn dir 1 ~stdin:c_in ~stdout:c_out (under_xensim (c_argv false)), cat_pid)
    end
    else begin
      let c_pid = spawn dir 0 ~stdin:c_in ~stdout:c_out (under_xensim (c_argv true)) in
      (c_pid, spawn dir 1 ~stdin:cat_in ~stdout:cat_out cat_argv)
    end
  in
  List.iter Unix.close [ c_in; c_out; cat_in; cat_out ];
  expect_ok "vchan-cat" cat_pid;
  expect_ok "C libxenvchan peer" c_pid;
  let dt = Unix.gettimeofday () -. t0 in
  ignore (wait_exit "feeder" feeder_pid);
  Printf.printf "64 MiB each way at once in %.2f s\n%!" dt;
  same "C -> vchan-cat" a out_b;
  same "vchan-cat -> C" b out_a

(* ---- vchan-socket-proxy and vchan-cat ---- *)

(* vchan-cat -N sends a file; vchan-socket-proxy (its standard input held
   open: at its end the proxy closes) writes it to its standard output. The
   proxy drops what is still in the ring once it sees a close: vchan-cat
   lingers until it was all read. *)
let to_proxy ?(size = (5 * mib) + 3) ?(name = "") ?(timeout = 60.) ~proxy_serves () =
  let dir = fresh_dir ((if proxy_serves then "proxy-server" else "proxy-client") ^ name) in
  let file = random_file dir "in" size in
  let out = Filename.concat dir "out" in
  let port = "proxy" in
  let p_in, p_hold = silent_stdin () in
  let p_out = openw out in
  let proxy_argv =
    if proxy_serves then under_xensim [ Lazy.force proxy; "-m"; "server"; "1"; xs_path port; "-" ]
    else under_xensim [ Lazy.force proxy; "-m"; "client"; "0"; xs_path port; "-" ]
  in
  let cat_in = openr file in
  let proxy_pid, cat_pid =
    if proxy_serves then begin
      let proxy_pid = spawn dir 0 ~stdin:p_in ~stdout:p_out proxy_argv in
      (proxy_pid,
       spawn dir 1 ~stdin:cat_in ~stdout:Unix.stdout
         [| Lazy.force cat; "-N"; "--timeout"; "10"; "0"; port |])
    end
    else begin
      let cat_pid =
        spawn dir 0 ~stdin:cat_in ~stdout:Unix.stdout
          [| Lazy.force cat; "-N"; "-l"; "1"; port |]
      in
      wait_for_file (rendezvous dir port);
      (spawn dir 1 ~stdin:p_in ~stdout:p_out proxy_argv, cat_pid)
    end
  in
  List.iter Unix.close [ p_in; p_out; cat_in ];
  (match wait_exit ~timeout "vchan-cat" cat_pid with
   | 0 -> ()
   | n ->
       (try Unix.kill proxy_pid Sys.sigkill with Unix.Unix_error _ -> ());
       ignore (Unix.waitpid [] proxy_pid);
       fail "vchan-cat exit status %d" n);
  ignore (wait_exit ~timeout:10. "vchan-socket-proxy" proxy_pid);
  Unix.close p_hold;
  Alcotest.(check int) "size" size (file_size out);
  same "vchan-cat -> vchan-socket-proxy" file out

(* ---- the same, and C peers that exit or die, with every CPU busy ---- *)

(* Run [f] with one busy loop per CPU (issue 10: a lost wake-up that only
   load exposed). *)
let under_load f () =
  let cpus =
    let ic = Unix.open_process_args_in "nproc" [| "nproc" |] in
    let n = try int_of_string (String.trim (input_line ic)) with _ -> 2 in
    ignore (Unix.close_process_in ic);
    max 1 n
  in
  let burners =
    List.init cpus (fun _ ->
        Unix.create_process "/bin/sh" [| "/bin/sh"; "-c"; "while :; do :; done" |]
          Unix.stdin Unix.stdout Unix.stderr)
  in
  Fun.protect f ~finally:(fun () ->
      List.iter
        (fun p ->
          (try Unix.kill p Sys.sigkill with Unix.Unix_error _ -> ());
          ignore (Unix.waitpid [] p))
        burners)

let runs = 25

(* Many short copies to the proxy; a hang fails the run after 20 s. *)
let to_proxy_under_load ~proxy_serves () =
  for run = 1 to runs do
    let size = 1 + Random.int (600 * 1024) in
    to_proxy ~size ~name:(Printf.sprintf "-load-%d" run) ~timeout:20. ~proxy_serves ()
  done

(* The C peer sends a file and exits at once (libxenvchan_close with the
   ring possibly full): vchan-cat writes all of it and exits 0. *)
let from_exiting_c ~cat_serves () =
  for run = 1 to runs / 2 do
    let dir = fresh_dir (Printf.sprintf "c-exits-%b-%d" cat_serves run) in
    let size = Random.int (300 * 1024) in
    let file = random_file dir "in" size in
    let out = Filename.concat dir "out" in
    let port = "exits" in
    let c_in = openr file and cat_out = openw out in
    let cat_in, hold = silent_stdin () in
    let c_argv =
      if cat_serves then [ Lazy.force xvchan; "client"; "0"; xs_path port; "stream-close" ]
      else [ Lazy.force xvchan; "server"; "1"; xs_path port; "1024"; "2048"; "stream-close" ]
    in
    let cat_pid, c_pid =
      if cat_serves then begin
        let cat_pid = spawn dir 0 ~stdin:cat_in ~stdout:cat_out [| Lazy.force cat; "-l"; "1"; port |] in
        wait_for_file (rendezvous dir port);
        (cat_pid, spawn dir 1 ~stdin:c_in ~stdout:Unix.stdout (under_xensim c_argv))
      end
      else begin
        let c_pid = spawn dir 0 ~stdin:c_in ~stdout:Unix.stdout (under_xensim c_argv) in
        (spawn dir 1 ~stdin:cat_in ~stdout:cat_out [| Lazy.force cat; "--timeout"; "10"; "0"; port |], c_pid)
      end
    in
    List.iter Unix.close [ c_in; cat_out; cat_in ];
    Alcotest.(check int) "vchan-cat exit status" 0 (wait_exit ~timeout:20. "vchan-cat" cat_pid);
    expect_ok "C peer" c_pid;
    Unix.close hold;
    same "C -> vchan-cat" file out
  done

(* vchan-cat sends to a proxy that stops reading (its output is a pipe
   nobody drains once the first bytes came) and is then SIGKILLed: vchan-cat
   fails (status 1), it does not wait for ever. *)
let to_killed_proxy () =
  for run = 1 to runs / 2 do
    let dir = fresh_dir (Printf.sprintf "proxy-killed-%d" run) in
    let file = random_file dir "in" (8 * mib) in
    let port = "killed" in
    let p_in, p_hold = silent_stdin () in
    let p_out, p_out_hold = Unix.pipe ~cloexec:true () in
    let proxy_pid =
      spawn dir 0 ~stdin:p_in ~stdout:p_out_hold
        (under_xensim [ Lazy.force proxy; "-m"; "server"; "1"; xs_path port; "-" ])
    in
    let cat_in = openr file in
    let cat_pid =
      spawn dir 1 ~stdin:cat_in ~stdout:Unix.stdout [| Lazy.force cat; "--timeout"; "10"; "0"; port |]
    in
    List.iter Unix.close [ p_in; cat_in; p_out_hold ];
    (* Kill it once vchan-cat is connected and sending (killed earlier, the
       proxy leaves a rendezvous that vchan-cat rightly waits on, for a new
       server, until its --timeout). *)
    (match Unix.select [ p_out ] [] [] 10. with
     | [], _, _ -> fail "run %d: the proxy received nothing within 10 s" run
     | _ -> ());
    Unix.sleepf (Random.float 0.05);
    Unix.kill proxy_pid Sys.sigkill;
    ignore (Unix.waitpid [] proxy_pid);
    Alcotest.(check int) "vchan-cat exit status after its peer died" 1
      (wait_exit ~timeout:10. "vchan-cat" cat_pid);
    List.iter Unix.close [ p_hold; p_out ]
  done

let () =
  let r = Filename.temp_file "vchan-rs-interop" "" in
  Sys.remove r;
  Unix.mkdir r 0o700;
  root := r;
  Random.self_init ();
  at_exit (fun () -> ignore (Sys.command ("rm -rf " ^ Filename.quote r)));
  Test_harness.run "vchan-rs interop"
    [
      ( "libxenvchan",
        [
          ("C server, vchan-cat client: 64 MiB each way", duplex ~cat_serves:false);
          ("vchan-cat server, C client: 64 MiB each way", duplex ~cat_serves:true);
        ] );
      ( "vchan-socket-proxy",
        [
          ("proxy serves, vchan-cat sends a file", fun () -> to_proxy ~proxy_serves:true ());
          ("vchan-cat serves and sends a file to the proxy", fun () -> to_proxy ~proxy_serves:false ());
        ] );
      ( "under load",
        [
          ("proxy serves, vchan-cat sends, 25 runs", under_load (to_proxy_under_load ~proxy_serves:true));
          ("vchan-cat serves, proxy receives, 25 runs", under_load (to_proxy_under_load ~proxy_serves:false));
          ("C server sends and exits, vchan-cat receives", under_load (from_exiting_c ~cat_serves:false));
          ("C client sends and exits, vchan-cat receives", under_load (from_exiting_c ~cat_serves:true));
          ("proxy killed while vchan-cat sends", under_load to_killed_proxy);
        ] );
    ]
