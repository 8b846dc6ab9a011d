(* EVENTS, MEMORY and CONFIGURATION for Lwt on Unix over rust/vchan's
   backends (Stubs' plumbing: rust/vchan-lwt-stubs/src/plumbing.rs), and a
   spin phase: what Vchan_rs.Endpoint.Make_with needs to make the Lwt Unix
   endpoint. *)

open Lwt.Infix

let ok = function Ok x -> x | Error e -> raise (Vchan_rs.Error.Vchan (Stubs.error_of_kind e))

(* The adaptive spin of rust/vchan/src/spin.rs: 2-100 us, doubling when it
   pays off, halving when it does not; grown when a wait ended within the
   longest budget. The clock is read only after 32 looks failed. *)
module Spin = struct
  let min_budget = 2e-6
  let max_budget = 100e-6
  let idle = 1e-3

  type t = { mutable budget : float; mutable began : float }

  let create () = { budget = 20e-6; began = 0. }

  let spin t ready =
    let rec looks n = n > 0 && (ready () || looks (n - 1)) in
    let rec go start =
      if looks 32 then begin
        t.budget <- Float.min (t.budget *. 2.) max_budget;
        true
      end
      else
        let now = Stubs.monotonic () in
        let start = if start = 0. then now else start in
        if now -. start >= t.budget then begin
          t.budget <- Float.max (t.budget /. 2.) min_budget;
          t.began <- start;
          false
        end
        else go start
    in
    go 0.

  let woke t =
    let waited = Stubs.monotonic () -. t.began in
    if waited < max_budget then t.budget <- Float.max t.budget (Float.min (waited *. 2.) max_budget)
    else if waited > idle then t.budget <- min_budget
end

(* The shared page of the endpoint being set up: the first page a server
   shares before it listens, the page a client maps before it connects.
   Its event channel clears the peer's live byte in it when the backend
   reports the peer gone (the unix backend: its socket's end-of-file), as
   Xen's unmap notification would: so the functor sees a dead peer as one
   that closed. *)
let setting_up : Vchan_rs.S.page option ref = ref None

module Events = struct
  type port = int

  let port_of_string s =
    match int_of_string_opt s with
    | Some p when p >= 0 -> Ok p
    | _ -> Error (`Msg ("bad event channel port " ^ s))

  let string_of_port = string_of_int

  type event = int

  let initial = 0

  type channel = {
    h : int;
    fd : Unix.file_descr;
    mutable count : int;  (** Wake-ups seen: the newest event. *)
    changed : unit Lwt_condition.t;
    mutable waiters : int;
    mutable watch : Lwt_engine.event option;
    mutable edge : bool;
    mutable arrivals : int;  (** Edge wake-ups since the last drain. *)
    mutable gone : bool;
    mutable closed : bool;
    page : Vchan_rs.S.page option;
    peer_live : int;  (** Offset of the peer's live byte in [page]. *)
    mutable hangup : Lwt_engine.event option;
  }

  let make ~peer_live h =
    let page = !setting_up in
    setting_up := None;
    {
      page;
      peer_live;
      hangup = None;
      h;
      fd = (Obj.magic (Stubs.chan_fd h : int) : Unix.file_descr);
      count = 0;
      changed = Lwt_condition.create ();
      waiters = 0;
      watch = None;
      edge = false;
      arrivals = 0;
      gone = false;
      closed = false;
    }

  let listen domid =
    let h = ok (Stubs.chan_listen domid) in
    (Stubs.chan_port h, make ~peer_live:20 h)

  let connect domid port = make ~peer_live:21 (ok (Stubs.chan_connect domid port))
  let send c = if not c.closed then ignore (Stubs.chan_notify c.h : int)

  let drain c =
    c.arrivals <- 0;
    let r = Stubs.chan_drain c.h in
    if (r < 0 || r land 1 = 1) && not c.gone then begin
      c.gone <- true;
      Option.iter Lwt_engine.stop_event c.hangup;
      Option.iter (fun p -> Bigarray.Array1.set p c.peer_live '\000') c.page
    end

  let stop c =
    Option.iter Lwt_engine.stop_event c.watch;
    c.watch <- None;
    Option.iter Lwt_engine.stop_event c.hangup;
    c.hangup <- None

  (* Level-triggered, every wake-up consumes the events. Edge-triggered
     (under Engine), a wake-up consumes them only every 48 arrivals, or
     before the connection exists (a server accepts its client while
     consuming). *)
  let rec woke c =
    if c.closed then ()
    else if (not c.edge) || c.arrivals >= 48 || Stubs.chan_hangup_fd c.h < 0 then drain c
    else c.arrivals <- c.arrivals + 1;
    if not c.closed then begin
      c.count <- c.count + 1;
      (* The waiters run now, and may close the channel. *)
      Lwt_condition.broadcast c.changed ();
      if c.waiters = 0 && not c.closed then begin
        if c.edge && c.arrivals > 0 then drain c;
        stop c
      end
      else watch_hangup c
    end

  (* Edge-triggered, the peer's end-of-file may wait unconsumed behind a
     notification: watch the connection for its hang-up alone. *)
  and watch_hangup c =
    if c.edge && c.hangup = None && (not c.gone) && not c.closed then
      let fd = Stubs.chan_hangup_fd c.h in
      if fd >= 0 then
        c.hangup <-
          Engine.on_hangup (Obj.magic fd : Unix.file_descr) (fun _ ->
              c.arrivals <- 48;
              woke c)

  let start c =
    if c.watch = None && not c.closed then
      match Engine.on_readable_edge c.fd (fun _ -> woke c) with
      | Some ev ->
          c.watch <- Some ev;
          c.edge <- true;
          watch_hangup c
      | None ->
          c.watch <- Some (Lwt_engine.on_readable c.fd (fun _ -> woke c));
          c.edge <- false

  let recv c ev =
    if c.count <> ev || c.closed then Lwt.return c.count
    else begin
      let w = Lwt_condition.wait c.changed in
      c.waiters <- c.waiters + 1;
      Lwt.on_termination w (fun () -> c.waiters <- c.waiters - 1);
      start c;
      w >|= fun () -> c.count
    end

  let close c =
    if not c.closed then begin
      c.closed <- true;
      stop c;
      Lwt_condition.broadcast c.changed ();
      Stubs.chan_free c.h
    end
end

module Memory = struct
  type grant = int32

  let grant_of_int32 g = g
  let int32_of_grant g = g

  type share = { s : int; sbuf : Vchan_rs.S.page; refs : int array }

  let grants_of_share s = Array.to_list (Array.map Int32.of_int s.refs)
  let buf_of_share s = s.sbuf

  let share ~domid ~npages ~rw:_ =
    let s = ok (Stubs.share domid npages) in
    let sbuf = Stubs.region_buf s in
    if !setting_up = None then setting_up := Some sbuf;
    { s; sbuf; refs = Stubs.region_refs s }

  let unshare s =
    Stubs.region_free s.s;
    Lwt.return_unit

  type mapping = { m : int; mbuf : Vchan_rs.S.page }

  let buf_of_mapping m = m.mbuf

  let mapv ~grants ~rw =
    match grants with
    | [] -> invalid_arg "mapv: no grants"
    | (domid, _) :: _ ->
        let refs = Array.of_list (List.map (fun (_, g) -> Int32.to_int g land 0xffff_ffff) grants) in
        let m = ok (Stubs.map domid refs rw) in
        { m; mbuf = Stubs.region_buf m }

  let map ~domid ~grant ~rw =
    let m = mapv ~grants:[ (domid, grant) ] ~rw in
    setting_up := Some m.mbuf;
    m
  let unmap m = Stubs.region_free m.m
end

module Config = struct
  type t = { ring_ref : string; event_channel : string }

  let num what s =
    match Int64.of_string_opt s with
    | Some n -> Int64.to_int n land 0xffff_ffff
    | None -> raise (Vchan_rs.Error.Vchan (`Invalid_argument (what ^ ": " ^ s)))

  let write ~client_domid ~port t =
    ok
      (Stubs.publish client_domid (Vchan_rs.Port.to_string port) (num "ring-ref" t.ring_ref)
         (num "event-channel" t.event_channel));
    Lwt.return_unit

  let read ~server_domid ~port =
    let rec go pause =
      match ok (Stubs.lookup server_domid (Vchan_rs.Port.to_string port)) with
      | Some (r, e) ->
          Lwt.return
            { ring_ref = Int32.to_string (Int32.of_int r); event_channel = string_of_int e }
      | None -> Lwt_unix.sleep pause >>= fun () -> go (Float.min (pause *. 2.) 0.05)
    in
    go 0.001

  let delete ~client_domid ~port =
    ok (Stubs.unpublish client_domid (Vchan_rs.Port.to_string port));
    Lwt.return_unit
end

module Endpoint = Vchan_rs.Endpoint.Make_with (Spin) (Events) (Memory) (Config)
