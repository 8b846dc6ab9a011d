open Lwt.Infix

module type BACKEND = sig
  val name : string option
end

let ok = function
  | Ok x -> x
  | Error e -> raise (Vchan_rs.Error.Vchan (Stubs.error_of_kind e))

let fd_of_int (fd : int) : Unix.file_descr = Obj.magic fd
let int_of_fd (fd : Unix.file_descr) : int = Obj.magic fd

let fd_read fd (buf : Cstruct.t) = Stubs.fd_read (int_of_fd fd) buf.buffer buf.off buf.len
let eagain = -11

(* The adaptive spin of rust/vchan/src/spin.rs: 2-100 us, doubling when it
   pays off, halving when it does not; grown when a wait ended within the
   longest budget, reset when it lasted long (the peer is idle). [ready]
   looks 32 times (Endpoint's poll_data/poll_space); the clock is read only
   after they failed.

   A spin that never pays costs its clock reads, and a clock read is a
   system call where the clock has no vDSO (a Xen PV guest under QEMU's
   emulation: 3 per wait, about a third of a wait's system calls). So once
   [futile] waits in a row followed a failed spin and outlasted the longest
   budget (a longer spin would not have caught the peer either), the spin
   only looks (the 32 looks, no clock) and its waits go untimed, except one
   in [probe_every], which spins and is timed as before: a success, or a
   wake-up within the longest budget, starts spinning again. *)
module Spin = struct
  let min_budget = 2e-6
  let max_budget = 100e-6
  let idle = 1e-3
  let futile = 8
  let probe_every = 16

  type t = {
    mutable budget : float;
    mutable began : float;  (** When the failed spin began; 0 if untimed. *)
    mutable misses : int;  (** Waits in a row that spinning would not have shortened. *)
    mutable skipped : int;  (** Untimed spins since the last probe. *)
  }

  let create () = { budget = 20e-6; began = 0.; misses = 0; skipped = 0 }

  let paid t =
    t.misses <- 0;
    t.budget <- Float.min (t.budget *. 2.) max_budget;
    true

  let spin t ready =
    if t.misses >= futile && t.skipped < probe_every then begin
      t.skipped <- t.skipped + 1;
      t.began <- 0.;
      ready () && paid t
    end
    else begin
      t.skipped <- 0;
      let rec go start =
        if ready () then paid t
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
    end

  let woke t =
    if t.began > 0. then begin
      let waited = Stubs.monotonic () -. t.began in
      if waited < max_budget then begin
        t.misses <- 0;
        t.budget <- Float.max t.budget (Float.min (waited *. 2.) max_budget)
      end
      else begin
        t.misses <- t.misses + 1;
        if waited > idle then t.budget <- min_budget
      end
    end
end

(* Events are watched through Lwt's engine; one watch per channel, while
   someone waits.

   Level-triggered (Lwt's default engine, or a backend whose events must
   be consumed at every wake-up: Xen's event channel device masks a port
   from its first event until its events are consumed), every wake-up
   consumes the events (one system call).

   Edge-triggered (under Engine, once the connection exists: the unix
   backend's event socket), a wake-up only counts: the notifications pile
   up in the socket's queue and are consumed every [drain_every] arrivals
   (one recvmmsg takes up to 64), far below what the queue holds (278 with
   Linux's default send buffer). An honest peer notifies at most once per
   arming, and the endpoint arms at most once per wait. The peer's death
   (end-of-file behind notifications the edge already reported) is seen
   through the connection's hang-up ([Engine.on_hangup], EPOLLRDHUP, which
   no notification raises), which consumes at once. Before the connection
   exists (a server waiting for its client, which it accepts while
   consuming) every wake-up consumes. When the last waiter is gone, what
   an edge-triggered watch left queued is consumed before the watch stops
   (a new watch would else fire at once for it). *)
let drain_every = 48

module Make (B : BACKEND) = struct
  module E = struct
    type port = int

    let port_of_string s =
      match int_of_string_opt s with
      | Some p when p >= 0 -> Ok p
      | _ -> Error (`Msg ("bad event channel port " ^ s))

    let string_of_port = string_of_int

    type event = int

    let initial = 0

    type channel = {
      h : Stubs.chan;
      fd : Unix.file_descr;
      mutable count : int;  (** Wake-ups seen: the newest event. *)
      changed : unit Lwt_condition.t;
      mutable waiters : int;
      mutable watch : Lwt_engine.event option;
      mutable hangup : Lwt_engine.event option;
      mutable edge : bool;
      mutable arrivals : int;  (** Edge wake-ups since the last drain. *)
      mutable gone : bool;
      mutable closed : bool;
    }

    let make h =
      let c =
        {
          h;
          fd = fd_of_int (Stubs.chan_fd h);
          count = 0;
          changed = Lwt_condition.create ();
          waiters = 0;
          watch = None;
          hangup = None;
          edge = false;
          arrivals = 0;
          gone = false;
          closed = false;
        }
      in
      (* A channel nobody closed is closed when it can no longer be
         reached (the engine holds it while it watches). *)
      Gc.finalise (fun c -> if not c.closed then Stubs.chan_free c.h) c;
      c

    let listen domid =
      let h = ok (Stubs.chan_listen B.name domid) in
      (Stubs.chan_port h, make h)

    let connect domid port =
      match ok (Stubs.chan_connect B.name domid port) with
      | 0 -> raise Vchan_rs.Endpoint.Stale
      | h -> make h

    let send c = if not c.closed then ignore (Stubs.chan_notify c.h : int)

    let stop_hangup c =
      Option.iter Lwt_engine.stop_event c.hangup;
      c.hangup <- None

    let drain c =
      c.arrivals <- 0;
      let r = Stubs.chan_drain c.h in
      if (r < 0 || r land 1 = 1) && not c.gone then begin
        c.gone <- true;
        stop_hangup c
      end

    let stop c =
      Option.iter Lwt_engine.stop_event c.watch;
      c.watch <- None;
      stop_hangup c

    let rec woke c =
      if not c.closed then begin
        if (not c.edge) || c.arrivals >= drain_every || Stubs.chan_hangup_fd c.h < 0
        then drain c
        else c.arrivals <- c.arrivals + 1;
        c.count <- c.count + 1;
        (* The waiters run now, and may close the channel. *)
        Lwt_condition.broadcast c.changed ();
        if c.waiters = 0 && not c.closed then begin
          if c.edge && c.arrivals > 0 then drain c;
          stop c
        end
        else watch_hangup c
      end

    and watch_hangup c =
      if c.edge && c.hangup = None && (not c.gone) && not c.closed then
        let fd = Stubs.chan_hangup_fd c.h in
        if fd >= 0 then
          c.hangup <-
            Engine.on_hangup (fd_of_int fd) (fun _ ->
                c.arrivals <- drain_every;
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

  (* Memory lives as long as a view of it is reachable (the bigarray
     [region_buf] returns owns it): unsharing or unmapping is leaving it
     to the garbage collector, so no view can dangle. *)
  module M = struct
    type grant = int32

    let grant_of_int32 g = g
    let int32_of_grant g = g

    type share = { sbuf : Vchan_rs.S.page; refs : int array }

    let grants_of_share s = Array.to_list (Array.map Int32.of_int s.refs)
    let buf_of_share s = s.sbuf

    let of_region r =
      let refs = Stubs.region_refs r in
      { sbuf = Stubs.region_buf r; refs }

    let share ~domid ~npages ~rw:_ = of_region (ok (Stubs.share B.name domid npages))
    let unshare _ = Lwt.return_unit

    type mapping = Vchan_rs.S.page

    let buf_of_mapping m = m
    let ref_int g = Int32.to_int g land 0xffff_ffff

    let mapv ~grants ~rw =
      match grants with
      | [] -> invalid_arg "mapv: no grants"
      | (domid, _) :: _ ->
          let refs = Array.of_list (List.map (fun (_, g) -> ref_int g) grants) in
          Stubs.region_buf (ok (Stubs.map B.name domid refs rw))

    let map ~domid ~grant ~rw = mapv ~grants:[ (domid, grant) ] ~rw
    let unmap _ = ()
  end

  module C = struct
    type t = { ring_ref : string; event_channel : string }

    let num what s =
      match Int64.of_string_opt s with
      | Some n when n >= -0x8000_0000L && n <= 0xffff_ffffL -> Int64.to_int n land 0xffff_ffff
      | _ -> raise (Vchan_rs.Error.Vchan (`Invalid_argument (what ^ ": " ^ s)))

    let write ~client_domid ~port t =
      ok
        (Stubs.publish B.name client_domid (Vchan_rs.Port.to_string port)
           (num "ring-ref" t.ring_ref)
           (num "event-channel" t.event_channel));
      Lwt.return_unit

    (* Polls the store with a growing pause (1 ms up to 50 ms). *)
    let read ~server_domid ~port =
      let rec go pause =
        match ok (Stubs.lookup B.name server_domid (Vchan_rs.Port.to_string port)) with
        | Some (r, e) ->
            Lwt.return
              { ring_ref = Int32.to_string (Int32.of_int r); event_channel = string_of_int e }
        | None -> Lwt_unix.sleep pause >>= fun () -> go (Float.min (pause *. 2.) 0.05)
      in
      go 0.001

    let delete ~client_domid ~port =
      ok (Stubs.unpublish B.name client_domid (Vchan_rs.Port.to_string port));
      Lwt.return_unit
  end

  let share_page (c : E.channel) ~domid ~own_live =
    M.of_region (ok (Stubs.share_page B.name c.h domid own_live))

  let map_page (c : E.channel) ~domid ~grant ~own_live =
    Stubs.region_buf (ok (Stubs.map_page B.name c.h domid (M.ref_int grant) own_live))

  let peer_gone (c : E.channel) = c.gone

  (* A wake-up that brought nothing: consume what an edge-triggered watch
     left queued (a flood of empty notifications is consumed, up to 64 per
     recvmmsg, once per wake-up). *)
  let stalled (c : E.channel) = if c.edge && c.arrivals > 0 && not c.closed then E.drain c

  type spin = Spin.t

  let spin = Spin.create
  let spin_until = Spin.spin
  let woke = Spin.woke
end
