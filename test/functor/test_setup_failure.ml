(* A server whose set-up fails part-way gives back what it acquired: the
   functor over a MEMORY and a CONFIGURATION written here, which count what
   is live and fail on demand, and In_memory_events (which counts open
   channels). Each case makes one step fail and checks that the server's
   promise fails (not a synchronous exception) and that nothing stays
   shared, published or open. And a client of a killed server's
   rendezvous (its page says the server exited) binds no event channel:
   under Xen a restarted server may already own that port number. *)

open Lwt.Infix

exception Injected of string

(* Which step fails: the [n]th share (counted from 1), the event channel,
   or the rendezvous. *)
let fail_share = ref 0
let fail_listen = ref false
let fail_write = ref false

module Memory = struct
  type grant = int32

  let grant_of_int32 g = g
  let int32_of_grant g = g

  type share = { grants : grant list; buf : Vchan_rs.S.page; mutable live : bool }

  let grants_of_share s = s.grants
  let buf_of_share s = s.buf
  let live = ref 0
  let made = ref 0
  let next = ref 1l

  let share ~domid:_ ~npages ~rw:_ =
    incr made;
    if !made = !fail_share then raise (Injected "share");
    let buf = Bigarray.(Array1.create char c_layout (npages * 4096)) in
    Bigarray.Array1.fill buf '\000';
    let grants =
      List.init npages (fun _ ->
          let g = !next in
          next := Int32.succ g;
          g)
    in
    incr live;
    { grants; buf; live = true }

  let unshare s =
    if not s.live then failwith "unshared twice";
    s.live <- false;
    decr live;
    Lwt.return_unit

  type mapping = Vchan_rs.S.page

  let buf_of_mapping m = m

  (* The only page a client maps here: a killed server's (all zero: its
     live byte says exited). *)
  let map ~domid:_ ~grant:_ ~rw:_ = Bigarray.(Array1.init char c_layout 4096 (fun _ -> '\000'))
  let mapv ~grants:_ ~rw:_ = failwith "no client in these cases"
  let unmap _ = ()
end

module Events = struct
  include Vchan_rs.In_memory_events

  let listened = ref 0

  let listen domid =
    incr listened;
    if !fail_listen then raise (Injected "listen") else listen domid

  let connected = ref 0

  let connect domid port =
    incr connected;
    connect domid port
end

module Config = struct
  type t = { ring_ref : string; event_channel : string }

  let published = ref 0

  let write ~client_domid:_ ~port:_ _ =
    (* As a store does: the failure comes after a yield. *)
    Lwt.pause () >>= fun () ->
    if !fail_write then Lwt.fail (Injected "write")
    else begin
      incr published;
      Lwt.return_unit
    end

  (* A killed server's rendezvous (see [Memory.map]). *)
  let read ~server_domid:_ ~port:_ = Lwt.return { ring_ref = "8"; event_channel = "5" }

  let delete ~client_domid:_ ~port:_ =
    if !published > 0 then decr published;
    Lwt.return_unit
end

module V = Vchan_rs.Endpoint.Make (Events) (Memory) (Config)

let port =
  match Vchan_rs.Port.of_string "setup" with Ok p -> p | Error (`Msg m) -> failwith m

(* Runs a server whose step [step] fails; 64 KiB rings, so that set-up
   shares three times (the page and two rings). *)
let case ~step () =
  fail_share := 0;
  fail_listen := false;
  fail_write := false;
  Memory.made := 0;
  Events.listened := 0;
  (match step with
  | `Share n -> fail_share := n
  | `Listen -> fail_listen := true
  | `Write -> fail_write := true);
  let promise =
    match V.server ~domid:1 ~port ~read_size:65536 ~write_size:65536 () with
    | p -> p
    | exception e -> Alcotest.failf "synchronous exception: %s" (Printexc.to_string e)
  in
  let outcome =
    Lwt.catch (fun () -> promise >|= fun _ -> Ok ()) (fun e -> Lwt.return (Error e))
  in
  (match Lwt_main.run outcome with
  | Ok _ -> Alcotest.fail "server set-up succeeded"
  | Error (Injected _) -> ()
  | Error e -> Alcotest.failf "failed with %s" (Printexc.to_string e));
  Alcotest.(check int) "pages still shared" 0 !Memory.live;
  Alcotest.(check int) "rendezvous still published" 0 !Config.published;
  Vchan_rs.In_memory_events.assert_cleaned_up ();
  (* Not a vacuous case: the failing step was reached. The event channel
     comes first (as in Xen's init.c: the control page is shared with an
     unmap notification on it), then the page and the two rings. *)
  Alcotest.(check bool) "the failing step ran" true
    (match step with
    | `Share n -> !Memory.made >= n
    | `Listen -> !Events.listened = 1 && !Memory.made = 0
    | `Write -> !Memory.made = 3)

let stale_client () =
  Events.connected := 0;
  (match Lwt_main.run (Lwt.catch (fun () -> V.client ~domid:0 ~port () >|= fun _ -> Ok ())
                         (fun e -> Lwt.return (Error e))) with
  | Error Vchan_rs.Endpoint.Stale -> ()
  | Ok () -> Alcotest.fail "connected to a dead server"
  | Error e -> Alcotest.failf "failed with %s" (Printexc.to_string e));
  Alcotest.(check int) "event channels bound" 0 !Events.connected;
  Vchan_rs.In_memory_events.assert_cleaned_up ()

(* A client that breaks the protocol is not simulated here: that the
   same path (a failed [connected]) releases is covered by [`Write], whose
   failure also comes after the channel and pages exist. *)
let () =
  Test_harness.run "vchan-rs functor: failed server set-up"
    [
      ( "server",
        [
          ("first share fails", case ~step:(`Share 1));
          ("a ring's share fails", case ~step:(`Share 3));
          ("the event channel fails", case ~step:`Listen);
          ("the rendezvous write fails", case ~step:`Write);
        ] );
      ("client", [ ("a killed server's rendezvous binds nothing", stale_client) ]);
    ]
