(* Tests of Vchan_rs_lwt_unix.Engine, the epoll Lwt engine: as an engine
   for any Lwt program (timers, descriptors, several watchers, edge
   watchers, fake_io, non-blocking iterations, fork, transfer), and under
   vchan endpoints (two processes, real shared memory): a long ping-pong in
   which both sides park, a peer killed while we wait, a peer that writes
   and dies at once, and a peer flooding notifications.

   Every vchan peer is this executable run again with
   VCHAN_ENGINE_TEST_CHILD=<role> (domain 0), under the engine too. Nothing
   is timed: a hang is caught by Lwt_unix.with_timeout (itself a timer of
   the engine under test) and, behind it, by alarm(2), which kills the
   process, so a hang fails the suite. *)

open Lwt.Infix
module E = Vchan_rs_lwt_unix.Endpoint
module Engine = Vchan_rs_lwt_unix.Engine

let fail fmt = Printf.ksprintf failwith fmt
let port s = Result.get_ok (Vchan_rs.Port.of_string s)
let child_var = "VCHAN_ENGINE_TEST_CHILD"

let get_ok what = function
  | Ok x -> x
  | Error e -> fail "%s: %s" what (Vchan_rs.Error.to_string e)

let install () =
  Engine.install ();
  if not (Engine.installed ()) then fail "Engine.install did not install it"

let run ?(timeout = 60.) p = Lwt_main.run (Lwt_unix.with_timeout timeout (fun () -> p))

(* ---- The engine alone ---- *)

let test_timer_order () =
  let order = ref [] and t0 = Engine.now () in
  let sleeper d name =
    Lwt_unix.sleep d >|= fun () ->
    if Engine.now () -. t0 < d then fail "timer %s fired early" name;
    order := name :: !order
  in
  (* Registered in this order (a list literal is evaluated right to left). *)
  let c = sleeper 0.03 "c" in
  let a = sleeper 0.01 "a" in
  let b = sleeper 0.02 "b" in
  let now = sleeper 0. "now" in
  let a' = sleeper 0.01 "a'" in
  run (Lwt.join [ c; a; b; now; a' ]);
  Alcotest.(check (list string))
    "by deadline, then registration" [ "now"; "a"; "a'"; "b"; "c" ] (List.rev !order)

let test_repeating_timer () =
  let count = ref 0 in
  let stopped, stop = Lwt.wait () in
  let _ev =
    Lwt_engine.on_timer 0.001 true (fun ev ->
        incr count;
        if !count = 5 then begin
          Lwt_engine.stop_event ev;
          Lwt.wakeup stop ()
        end)
  in
  run stopped;
  run (Lwt_unix.sleep 0.05);
  Alcotest.(check int) "fired 5 times, then stopped" 5 !count;
  Alcotest.(check int) "no timer left" 0 (Lwt_engine.timer_count ())

let test_timeout_and_cancel () =
  (match run (Lwt_unix.with_timeout 0.01 (fun () -> Lwt_unix.sleep 30.)) with
  | () -> fail "with_timeout did not time out"
  | exception Lwt_unix.Timeout -> ());
  let fired = ref false in
  let p = Lwt_unix.sleep 0.01 >|= fun () -> fired := true in
  Lwt.cancel p;
  run (Lwt_unix.sleep 0.05);
  Alcotest.(check bool) "a cancelled sleep never fires" false !fired;
  Alcotest.(check int) "no timer left" 0 (Lwt_engine.timer_count ())

(* Lwt_unix reads that wait for data, and writes that wait for room (a
   pipe holds 64 KiB: 1 MiB through it waits many times each way). *)
let test_lwt_unix_pipe () =
  let r, w = Lwt_unix.pipe () in
  let size = 1 lsl 20 in
  let data = Test_harness.pseudo_random ~seed:11L size in
  let got = Bytes.create size in
  let writer =
    let rec go off =
      if off = size then Lwt_unix.close w
      else Lwt_unix.write w data off (min 10_000 (size - off)) >>= fun n -> go (off + n)
    in
    Lwt_unix.sleep 0.01 >>= fun () -> go 0
  in
  let reader =
    let rec go off =
      Lwt_unix.read r got off (min 7_000 (size - off)) >>= fun n ->
      if n = 0 then Lwt.return off
      else
        (if off mod 200_000 < 7_000 then Lwt_unix.sleep 0.002 else Lwt.return_unit)
        >>= fun () -> go (off + n)
    in
    go 0
  in
  let n = run (Lwt.both writer reader >|= snd) in
  Lwt_main.run (Lwt_unix.close r);
  Alcotest.(check int) "all bytes" size n;
  Alcotest.(check bool) "in order" true (Bytes.equal data got)

(* Level-triggered: each watcher of a ready descriptor is called at every
   iteration until stopped; stopping one leaves the others. *)
let test_several_watchers () =
  let r, w = Unix.pipe ~cloexec:true () in
  let base = Lwt_engine.readable_count () in
  let a = ref 0 and b = ref 0 and wr = ref 0 in
  let ea = Lwt_engine.on_readable r (fun _ -> incr a) in
  let eb = Lwt_engine.on_readable r (fun _ -> incr b) in
  let ew = Lwt_engine.on_writable w (fun _ -> incr wr) in
  run (Lwt_unix.sleep 0.01);
  Alcotest.(check (pair int int)) "nothing to read: not called" (0, 0) (!a, !b);
  Alcotest.(check bool) "writable: called at every iteration" true (!wr >= 1);
  Lwt_engine.stop_event ew;
  ignore (Unix.write_substring w "x" 0 1);
  run (Lwt_unix.sleep 0.02);
  (* A sleep of 20 ms with a descriptor ready: many iterations. *)
  if !a < 2 || !b < 2 then fail "level watchers called %d and %d times" !a !b;
  Lwt_engine.stop_event ea;
  a := 0;
  b := 0;
  run (Lwt_unix.sleep 0.02);
  Alcotest.(check int) "stopped watcher not called" 0 !a;
  if !b < 2 then fail "remaining watcher called %d times" !b;
  Lwt_engine.stop_event eb;
  Alcotest.(check int) "watchers gone" base (Lwt_engine.readable_count ());
  b := 0;
  run (Lwt_unix.sleep 0.01);
  Alcotest.(check int) "no call after stop" 0 !b;
  Unix.close r;
  Unix.close w

(* Edge-triggered: once per arrival, whatever stays unread; called as a
   level watcher while a level watcher shares the descriptor. *)
let test_edge_watcher () =
  let s, peer = Unix.socketpair ~cloexec:true Unix.PF_UNIX Unix.SOCK_STREAM 0 in
  let n = ref 0 in
  let ev =
    match Engine.on_readable_edge s (fun _ -> incr n) with
    | Some ev -> ev
    | None -> fail "on_readable_edge: the engine is not current"
  in
  run (Lwt_unix.sleep 0.01);
  Alcotest.(check int) "nothing arrived" 0 !n;
  ignore (Unix.write_substring peer "a" 0 1);
  run (Lwt_unix.sleep 0.02);
  Alcotest.(check int) "one arrival: one call, though unread" 1 !n;
  ignore (Unix.write_substring peer "b" 0 1);
  run (Lwt_unix.sleep 0.02);
  Alcotest.(check int) "a second arrival" 2 !n;
  let level = Lwt_engine.on_readable s ignore in
  run (Lwt_unix.sleep 0.02);
  if !n < 4 then fail "with a level watcher too: %d calls" !n;
  Lwt_engine.stop_event level;
  let buf = Bytes.create 16 in
  ignore (Unix.read s buf 0 16);
  run (Lwt_unix.sleep 0.01);
  let m = !n in
  run (Lwt_unix.sleep 0.02);
  Alcotest.(check int) "edge again: quiet without arrivals" m !n;
  ignore (Unix.write_substring peer "c" 0 1);
  run (Lwt_unix.sleep 0.02);
  Alcotest.(check int) "edge again: one call per arrival" (m + 1) !n;
  Lwt_engine.stop_event ev;
  ignore (Unix.write_substring peer "d" 0 1);
  run (Lwt_unix.sleep 0.01);
  Alcotest.(check int) "stopped" (m + 1) !n;
  Unix.close s;
  Unix.close peer

let test_fake_io_and_nonblocking_iter () =
  let r, w = Unix.pipe ~cloexec:true () in
  let n = ref 0 in
  let ev = Lwt_engine.on_readable r (fun _ -> incr n) in
  Lwt_engine.fake_io r;
  Alcotest.(check int) "fake_io calls the watcher" 1 !n;
  (* A far timer: [iter false] must not sleep until it (alarm(2) would
     end the test). *)
  let far = Lwt_engine.on_timer 3600. false ignore in
  for _ = 1 to 100 do
    Lwt_engine.iter false
  done;
  Alcotest.(check int) "nothing ready: not called" 1 !n;
  ignore (Unix.write_substring w "x" 0 1);
  Lwt_engine.iter false;
  Alcotest.(check int) "ready: called by a non-blocking iteration" 2 !n;
  (* A blocking iteration returns once the descriptor is ready. *)
  Lwt_engine.iter true;
  Alcotest.(check int) "and by a blocking one" 3 !n;
  Lwt_engine.stop_event far;
  Lwt_engine.stop_event ev;
  Unix.close r;
  Unix.close w

(* A regular file is not pollable: always ready, as under libev. *)
let test_regular_file () =
  let path = Filename.temp_file "vchan-engine" ".txt" in
  let oc = open_out path in
  output_string oc "contents";
  close_out oc;
  let fd = Unix.openfile path [ Unix.O_RDONLY; Unix.O_CLOEXEC ] 0 in
  let lfd = Lwt_unix.of_unix_file_descr ~blocking:false fd in
  run (Lwt_unix.wait_read lfd);
  let buf = Bytes.create 8 in
  let n = run (Lwt_unix.read lfd buf 0 8) in
  Lwt_main.run (Lwt_unix.close lfd);
  Sys.remove path;
  Alcotest.(check string) "read" "contents" (Bytes.sub_string buf 0 n)

(* Jobs in other threads (Lwt_preemptive, and Lwt_unix's blocking file
   reads) report back through Lwt_unix's notification descriptor; the
   detached OCaml code runs while the engine sleeps in epoll_wait, which
   must release the runtime lock for it. *)
let test_threads () =
  let v = run (Lwt_preemptive.detach (fun () -> Thread.delay 0.01; 42) ()) in
  Alcotest.(check int) "detached result" 42 v;
  let path = Filename.temp_file "vchan-engine" ".txt" in
  let oc = open_out path in
  output_string oc "job";
  close_out oc;
  let got =
    run
      ( Lwt_unix.openfile path [ Unix.O_RDONLY ] 0 >>= fun fd ->
        let buf = Bytes.create 3 in
        Lwt_unix.read fd buf 0 3 >>= fun n ->
        Lwt_unix.close fd >|= fun () -> Bytes.sub_string buf 0 n )
  in
  Sys.remove path;
  Alcotest.(check string) "read by a job" "job" got

(* Lwt_unix.fork: the child gets an epoll set of its own and works. *)
let test_fork () =
  let r, w = Unix.pipe ~cloexec:true () in
  let back_r, back_w = Unix.pipe ~cloexec:true () in
  match Lwt_unix.fork () with
  | 0 ->
      let ok =
        try
          let lr = Lwt_unix.of_unix_file_descr r and lw = Lwt_unix.of_unix_file_descr back_w in
          let buf = Bytes.create 1 in
          Lwt_main.run
            ( Lwt_unix.sleep 0.01 >>= fun () ->
              Lwt_unix.read lr buf 0 1 >>= fun _ -> Lwt_unix.write_string lw "y" 0 1 )
          = 1
          && Engine.installed ()
        with _ -> false
      in
      Unix._exit (if ok then 0 else 1)
  | pid ->
      let lr = Lwt_unix.of_unix_file_descr back_r in
      let buf = Bytes.create 1 in
      let n =
        run (Lwt_unix.sleep 0.02 >>= fun () ->
             ignore (Unix.write_substring w "x" 0 1);
             Lwt_unix.read lr buf 0 1)
      in
      Test_harness.expect_exit0 "forked child" pid;
      Alcotest.(check (pair int string)) "child answered" (1, "y") (n, Bytes.to_string buf);
      List.iter Unix.close [ r; w; back_w ];
      Lwt_main.run (Lwt_unix.close lr)

(* Switching engines moves watchers and timers both ways. *)
let test_transfer () =
  let s, peer = Unix.socketpair ~cloexec:true Unix.PF_UNIX Unix.SOCK_STREAM 0 in
  let n = ref 0 in
  let edge = Option.get (Engine.on_readable_edge s (fun _ -> incr n)) in
  let slept = Lwt_unix.sleep 0.03 in
  Lwt_engine.set (new Lwt_engine.select);
  Alcotest.(check bool) "not ours any more" false (Engine.installed ());
  Alcotest.(check bool) "no edge watch elsewhere" true
    (Engine.on_readable_edge s ignore = None);
  ignore (Unix.write_substring peer "a" 0 1);
  run slept;
  (* The edge watcher became a level watcher there. *)
  if !n < 1 then fail "moved watcher not called";
  install ();
  let m = !n in
  run (Lwt_unix.sleep 0.01);
  (* Moved back as a level watcher: called while unread. *)
  if !n <= m then fail "watcher not moved back";
  Lwt_engine.stop_event edge;
  Unix.close s;
  Unix.close peer

(* ---- Under vchan endpoints, two processes ---- *)

let with_child role f =
  let pid = Test_harness.spawn_self [ (child_var, role); ("VCHAN_DOMID", "0") ] in
  match run ~timeout:120. (f pid) with
  | x ->
      Test_harness.expect_exit0 role pid;
      x
  | exception e ->
      (try Unix.kill pid Sys.sigkill with _ -> ());
      ignore (Test_harness.waitpid pid);
      raise e

let rec read_exactly t buf off =
  if off = Cstruct.length buf then Lwt.return_unit
  else
    E.read t >>= function
    | Ok (`Data v) ->
        let n = Cstruct.length v in
        if off + n > Cstruct.length buf then fail "more than expected";
        Cstruct.blit v 0 buf off n;
        read_exactly t buf (off + n)
    | Ok `Eof -> fail "end of stream after %d of %d bytes" off (Cstruct.length buf)
    | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)

let rec read_to_eof t acc =
  E.read t >>= function
  | Ok (`Data v) -> read_to_eof t (acc + Cstruct.length v)
  | Ok `Eof -> Lwt.return acc
  | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)

(* A random pause: none, a blocking sleep (the process is not in its event
   loop), or an Lwt sleep (it waits in the engine), of up to 300 us. *)
let pause rng =
  match Random.State.int rng 4 with
  | 0 -> Lwt.return_unit
  | 1 ->
      Unix.sleepf (Random.State.float rng 0.0003);
      Lwt.return_unit
  | _ -> Lwt_unix.sleep (Random.State.float rng 0.0003)

let pingpong_rounds = 4000

(* Echo [pingpong_rounds] messages of the sizes the client sends (1 to
   [max] bytes; 4 KiB rings: larger messages wait for room), pausing at
   random. *)
let echo_role name max =
  E.server ~domid:1 ~port:(port name) ~read_size:4096 ~write_size:4096 () >>= fun t ->
  (* The sizes: the client's sequence; the pauses: our own. *)
  let rng = Random.State.make [| 2 |] and mine = Random.State.make [| 4 |] in
  let rec loop i =
    if i = pingpong_rounds then E.close t
    else
      let size = 1 + Random.State.int rng max in
      let buf = Cstruct.create size in
      read_exactly t buf 0 >>= fun () ->
      pause mine >>= fun () ->
      E.write t buf >|= get_ok "echo" >>= fun () -> loop (i + 1)
  in
  loop 0

(* [pingpong_rounds] round trips of 1 to [max] bytes. [duplex]: write the
   message while the echo comes (the two operations wait at once); else
   strictly one then the other, so that every wake-up brings progress and
   only the periodic consumption keeps the event queue short (without it,
   the queue fills after ~278 parks and the peer's notifications are
   dropped). *)
let long_pingpong ~duplex max () =
  let name = Printf.sprintf "long%b%d" duplex max in
  with_child (Printf.sprintf "echo:%s:%d" name max) (fun _ ->
      E.client ~domid:0 ~port:(port name) () >>= fun t ->
      let rng = Random.State.make [| 2 |] and mine = Random.State.make [| 3 |] in
      let rec loop i =
        if i = pingpong_rounds then Lwt.return_unit
        else
          let size = 1 + Random.State.int rng max in
          let out = Cstruct.of_bytes (Test_harness.pseudo_random ~seed:(Int64.of_int (i + 1)) size) in
          let back = Cstruct.create size in
          (* Both sides park: the server pauses before echoing, we before
             sending and while the echo comes. *)
          pause mine >>= fun () ->
          (if duplex then
             Lwt.both (E.write t out >|= get_ok "write") (read_exactly t back 0) >|= fst
           else E.write t out >|= get_ok "write" >>= fun () -> read_exactly t back 0)
          >>= fun () ->
          if not (Cstruct.equal out back) then fail "round %d: echo differs" i;
          loop (i + 1)
      in
      loop 0 >>= fun () -> read_to_eof t 0 >>= fun n ->
      Alcotest.(check int) "nothing after the last echo" 0 n;
      E.close t)

(* Say "ready", then wait for ever (until killed). *)
let hold_role name =
  E.server ~domid:1 ~port:(port name) () >>= fun t ->
  E.write t (Cstruct.of_string "ready") >|= get_ok "ready" >>= fun () ->
  Lwt_unix.sleep 1000. >>= fun () -> E.close t

(* Does an epoll set of this process (the engine's) hold a descriptor
   edge-triggered? Read from /proc/self/fdinfo: lines "tfd: N events: HEX". *)
let edge_watch_registered () =
  let epolls =
    Sys.readdir "/proc/self/fd" |> Array.to_list
    |> List.filter (fun f ->
           match Unix.readlink ("/proc/self/fd/" ^ f) with
           | l -> l = "anon_inode:[eventpoll]"
           | exception Unix.Unix_error _ -> false)
  in
  List.exists
    (fun f ->
      match open_in ("/proc/self/fdinfo/" ^ f) with
      | exception Sys_error _ -> false
      | ic ->
          let rec scan () =
            match input_line ic with
            | exception End_of_file -> false
            | l -> (
                match Scanf.sscanf l "tfd: %d events: %x" (fun _ ev -> ev) with
                | ev when ev land 0x80000000 <> 0 -> true
                | _ | (exception _) -> scan ())
          in
          let r = scan () in
          close_in ic;
          r)
    epolls

let test_peer_killed () =
  let pid = Test_harness.spawn_self [ (child_var, "hold:held"); ("VCHAN_DOMID", "0") ] in
  let r =
    run
      ( E.client ~domid:0 ~port:(port "held") () >>= fun t ->
        let buf = Cstruct.create 5 in
        read_exactly t buf 0 >>= fun () ->
        (* Kill it while our read waits. *)
        let reading = E.read t in
        Lwt_unix.sleep 0.05 >>= fun () ->
        if not (edge_watch_registered ()) then
          fail "no edge-triggered watch while the read waits";
        Unix.kill pid Sys.sigkill;
        reading >>= fun r ->
        let vanished = E.peer_vanished t in
        E.close t >|= fun () -> (r, vanished) )
  in
  ignore (Test_harness.waitpid pid);
  match r with
  | Ok `Eof, vanished -> Alcotest.(check bool) "peer vanished" true vanished
  | Ok (`Data _), _ -> fail "data from a dead peer"
  | Error e, _ -> fail "read: %s" (Vchan_rs.Error.to_string e)

(* Write [n] bytes, then die at once (SIGKILL): the end-of-file reaches our
   queue right behind the notification of the data. *)
let write_die_role name n =
  E.server ~domid:1 ~port:(port name) () >>= fun t ->
  E.write t (Cstruct.create n) >|= get_ok "write" >>= fun () ->
  Unix.kill (Unix.getpid ()) Sys.sigkill;
  Lwt.return_unit

let test_write_then_die () =
  for i = 1 to 12 do
    let name = Printf.sprintf "die%d" i and n = 1000 * i in
    let pid =
      Test_harness.spawn_self
        [ (child_var, Printf.sprintf "write-die:%s:%d" name n); ("VCHAN_DOMID", "0") ]
    in
    let got, vanished =
      run
        ( E.client ~domid:0 ~port:(port name) () >>= fun t ->
          read_to_eof t 0 >>= fun got ->
          let v = E.peer_vanished t in
          E.close t >|= fun () -> (got, v) )
    in
    (match Test_harness.waitpid pid with
    | Unix.WSIGNALED s when s = Sys.sigkill -> ()
    | _ -> fail "the writer did not die of SIGKILL");
    Alcotest.(check int) (name ^ ": every byte, then end of stream") n got;
    Alcotest.(check bool) (name ^ ": vanished") true vanished
  done

(* The connected event socket of this process (the server's end, once the
   client came): the only socket it has. *)
let event_socket () =
  let socks =
    Sys.readdir "/proc/self/fd" |> Array.to_list
    |> List.filter_map (fun f ->
           match Unix.readlink ("/proc/self/fd/" ^ f) with
           | l when String.starts_with ~prefix:"socket:" l -> Some (int_of_string f)
           | _ | (exception Unix.Unix_error _) -> None)
  in
  match socks with
  | [ fd ] -> (Obj.magic fd : Unix.file_descr)
  | l -> fail "expected one socket, found %d" (List.length l)

(* Send [count] raw notifications ("N" messages) on the event socket with
   no ring progress (a full queue makes it pause 1 ms), then write "Q",
   stay silent 0.3 s, write "D" and wait for "R". *)
let flood_role name count =
  E.server ~domid:1 ~port:(port name) () >>= fun t ->
  let fd = event_socket () in
  Unix.set_nonblock fd;
  let sent = ref 0 in
  for _ = 1 to count do
    match Unix.write_substring fd "N" 0 1 with
    | _ -> incr sent
    | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) -> Unix.sleepf 0.001
  done;
  if !sent < count / 10 then fail "flood: only %d of %d sent" !sent count;
  E.write t (Cstruct.of_string "Q") >|= get_ok "Q" >>= fun () ->
  Unix.sleepf 0.3;
  E.write t (Cstruct.of_string "D") >|= get_ok "D" >>= fun () ->
  let buf = Cstruct.create 1 in
  read_exactly t buf 0 >>= fun () ->
  if Cstruct.to_string buf <> "R" then fail "flood: expected R";
  E.close t

let flood_count = 20_000

let test_flood () =
  let iterations = ref 0 in
  let hook = Lwt_main.Enter_iter_hooks.add_first (fun () -> incr iterations) in
  let quiet, during =
    with_child (Printf.sprintf "flood:flood:%d" flood_count) (fun _ ->
        E.client ~domid:0 ~port:(port "flood") () >>= fun t ->
        let i0 = !iterations in
        let buf = Cstruct.create 1 in
        read_exactly t buf 0 >>= fun () ->
        if Cstruct.to_string buf <> "Q" then fail "expected Q";
        let i1 = !iterations in
        read_exactly t buf 0 >>= fun () ->
        if Cstruct.to_string buf <> "D" then fail "expected D";
        let i2 = !iterations in
        E.write t (Cstruct.of_string "R") >|= get_ok "R" >>= fun () ->
        read_to_eof t 0 >>= fun _ ->
        E.close t >|= fun () -> (i2 - i1, i1 - i0))
  in
  Lwt_main.Enter_iter_hooks.remove hook;
  (* At most one wake-up per arrival while flooded; while the flooder is
     silent (0.3 s) no spinning: a handful of iterations (the wake-up for
     "D", a death-check timer), where a loop would make thousands. *)
  if during > flood_count + 100 then fail "%d iterations for %d notifications" during flood_count;
  if quiet > 20 then fail "%d iterations while the peer was silent" quiet

(* ---- Child roles ---- *)

let run_child role =
  ignore (Unix.alarm 120);
  install ();
  let job =
    match String.split_on_char ':' role with
    | [ "echo"; name; max ] -> echo_role name (int_of_string max)
    | [ "hold"; name ] -> hold_role name
    | [ "write-die"; name; n ] -> write_die_role name (int_of_string n)
    | [ "flood"; name; n ] -> flood_role name (int_of_string n)
    | _ -> fail "unknown child role %S" role
  in
  Test_harness.run_child role (fun () -> Lwt_main.run job)

let () =
  match Sys.getenv_opt child_var with
  | Some role -> run_child role
  | None ->
      ignore (Unix.alarm 600);
      ignore (Test_harness.unix_backend_root ());
      install ();
      (* VCHAN_LWT_DEATH_CHECK set (see the dune file): only the cases where
         the peer dies, which must then be seen by the hang-up watch. *)
      let death_only = Sys.getenv_opt "VCHAN_LWT_DEATH_CHECK" <> None in
      let deaths =
        [
          ("peer killed while we wait", test_peer_killed);
          ("peer writes, then dies at once", test_write_then_die);
        ]
      in
      if death_only then Test_harness.run "Engine-deaths-without-timer" [ ("deaths", deaths) ]
      else
      Test_harness.run "Engine"
        [
          ( "engine",
            [
              ("timers: deadline order, never early", test_timer_order);
              ("repeating timer, stopped", test_repeating_timer);
              ("with_timeout, cancelled sleep", test_timeout_and_cancel);
              ("Lwt_unix reads and writes wait", test_lwt_unix_pipe);
              ("several level watchers, stop", test_several_watchers);
              ("edge watcher", test_edge_watcher);
              ("fake_io, non-blocking and blocking iter", test_fake_io_and_nonblocking_iter);
              ("regular file: always ready", test_regular_file);
              ("Lwt_preemptive and Lwt_unix jobs", test_threads);
              ("Lwt_unix.fork", test_fork);
              ("transfer to another engine and back", test_transfer);
            ] );
          ( "vchan under the engine",
            [
              ("long ping-pong, 64 B, both sides park", long_pingpong ~duplex:false 64);
              ( "long ping-pong, up to 6000 B, full duplex",
                long_pingpong ~duplex:true 6000 );
            ]
            @ deaths
            @ [ ("notification flood", test_flood) ] );
        ]
