module Port = Vchan_rs.Port
module Error = Vchan_rs.Error
module S = Vchan_rs.S

open Lwt.Infix

type port = Port.t
type error = Error.t
type write_error = Error.t

let pp_error = Error.pp
let pp_write_error = Error.pp

type t = {
  h : Stubs.handle;
  ring : Cstruct.buffer;
      (* The read ring. It owns [h] (see Stubs.ring): while the endpoint or
         any view into its ring is reachable, [h] stays valid and the ring
         mapped. *)
  lfd : Lwt_unix.file_descr;
      (* The event descriptor, owned by Rust: Lwt only waits on it. *)
  mutable pending : int;
      (* Length of the last view [read] returned, consumed by the next read. *)
  mutable closed : bool;
  mutable read_shut : bool;
  changed : unit Lwt_condition.t;
      (* Operations that would block wait here; see [wait]. *)
  mutable watch : Lwt_engine.event option;
      (* The poller watching [lfd], if one is (see [start_poller]). *)
  edge_ok : bool;
      (* The backend's events may be left unconsumed (unix: a socket queue).
         Not so under Xen: the event channel device masks a port from its
         first event until the events are consumed (read, then unmasked),
         so an unconsumed wake-up would be the last one. *)
  mutable edge : bool;
      (* The poller watches edge-triggered (under Engine, [edge_ok]): its
         wake-ups do not consume the events (see "Edge-triggered
         waiting"). *)
  mutable waiters : int;  (* Operations waiting on [changed]. *)
  mutable armed : int;
      (* Operations that answered "would block" (armed a notification)
         since the events were last consumed. *)
  mutable drains : int;  (* How often the events were consumed. *)
  mutable undrained : bool;
      (* An edge-triggered wake-up came since the events were last
         consumed: an end-of-file may wait unseen in the queue. *)
  mutable death_check : Lwt_engine.event option;
      (* The pending [death_check_after] timer, if any. *)
  mutable hangup : Lwt_engine.event option;
      (* Edge-triggered: the watch of the connection socket for the peer's
         hang-up ([Engine.on_hangup] of [Stubs.hangup_fd]), if one is. *)
  mutable hangup_fd : int;  (* The descriptor it watches (-1: none). *)
  mutable failed : Error.t option;
      (* Consuming the events failed (the peer broke the protocol, or a
         system error): every later wait returns this. *)
}

type flow = t
type state = Waiting | Connected | Exited

exception Aborted
(* Wakes Lwt waiters of a closed endpoint. *)

(* Endpoints not yet collected keep their memory (and, for a server of the
   unix backend, its files). At exit, collect those nobody can reach any
   more: one major cycle runs the finaliser below (which keeps the ring
   alive while it runs), a second one frees the ring, and so the endpoint. *)
let alive = ref 0

let () =
  at_exit (fun () ->
      if !alive > 0 then begin
        Gc.full_major ();
        Gc.full_major ()
      end)

let fail_with e = Lwt.fail (Error.Vchan e)

let make ~backend h =
  let ring = Stubs.ring h in
  let fd : Unix.file_descr = Obj.magic (Stubs.fd h : int) in
  let lfd = Lwt_unix.of_unix_file_descr ~blocking:false ~set_flags:false fd in
  let t =
    {
      h;
      ring;
      lfd;
      pending = 0;
      closed = false;
      read_shut = false;
      changed = Lwt_condition.create ();
      watch = None;
      edge_ok = backend = Some "unix";
      edge = false;
      waiters = 0;
      armed = 0;
      drains = 0;
      undrained = false;
      death_check = None;
      hangup = None;
      hangup_fd = -1;
      failed = None;
    }
  in
  (* Runs before the ring (which [t] holds) can be collected, and so before
     Rust closes the descriptor: make Lwt stop watching it. *)
  incr alive;
  Gc.finalise
    (fun t ->
      decr alive;
      if not t.closed then Lwt_unix.abort t.lfd Aborted)
    t;
  t

let backend_name = function
  | Some b -> Some (Backend.to_string b)
  | None -> (
      match Backend.default () with
      | Ok b -> Some (Backend.to_string b)
      | Error (`Msg m) -> raise (Error.Vchan (`Unavailable m)))

let own_domid ?backend () =
  match Stubs.own_domid (backend_name backend) with
  | Ok d -> d
  | Error e -> raise (Error.Vchan (Stubs.error_of_kind e))

let listen ?backend ~domid ~port ?(read_size = 65536) ?(write_size = 65536) ()
    =
  let backend = backend_name backend in
  match
    Stubs.listen backend domid (Port.to_string port) read_size write_size
  with
  | Ok h -> make ~backend h
  | Error e -> raise (Error.Vchan (Stubs.error_of_kind e))

(* Waiting.

   As with Xen's libxenvchan, operations never consume events: one that
   would block has armed its notification and answers [e_again], and the
   event descriptor polls readable once something changed (data, room, the
   peer's state) until the events are consumed. So waiting is per endpoint:
   operations that would block wait on [t.changed]; one poller at a time
   watches the descriptor and, when it polls readable, consumes the events
   (once, for every waiter) and wakes all waiters to retry. An event that
   arrives before the poller watches leaves the descriptor readable, so no
   wake-up can be lost, and a retry that would block again just waits. *)

(* The poller watches the descriptor through the engine directly, not
   [Lwt_unix.wait_read] (which first checks readability with a poll(2) of
   its own), and stays registered while operations keep waiting (no
   epoll_ctl per wait). It stops once no operation waits any more, so that
   an idle endpoint is not reachable from the engine (and can be
   collected). Before an operation answers "would block", the Rust side has
   spun briefly on the peer's index (at most 100 us, 2 us once the peer is
   idle; see Endpoint::set_nonblocking_spin), so a busy peer is met without
   events at all.

   Level-triggered waiting (Lwt's default engine, or any other): a wake-up
   costs the engine's epoll_wait and one [consume_events] (one recvmmsg on
   the unix backend), which the poller runs before waking the waiters: the
   descriptor polls readable until then.

   Edge-triggered waiting (Engine installed, unix backend:
   [Engine.on_readable_edge]; a xen endpoint stays level-triggered, see
   [edge_ok]): the poller is called once per arrival of new events, so a
   wake-up need not consume them: it costs the epoll_wait alone, and the events pile up in
   the descriptor's queue. What keeps that correct:
   - No lost wake-up. A wait begins after the operation armed its
     notification and found no progress; the peer notifies after that, so
     its notification is a new arrival, hence an edge, as long as the
     queue has room. An honest peer notifies at most once per arming (the
     notifier clears the bit it acts on), so the queue grows by at most one
     message per "would block" ([armed]). The queue of the unix backend's
     event socket (SOCK_SEQPACKET) is bounded by the sender's send buffer:
     with Linux's default (net.core.wmem_default = 212992 bytes) it holds
     278 one-byte messages (measured; each costs ~768 bytes of buffer).
     The events are consumed at the first wake-up once [armed] reached
     [drain_every] (48: one recvmmsg of the unix backend takes up to 64
     messages), and before waiting again once it reached [drain_bound]
     (96), far below 278.
   - Every consumption is followed by waking every waiter, which retries
     before waiting again: consuming also swallows arrivals whose edge has
     not been delivered yet (the engine re-checks readiness when it
     reports), so only a retry after it is sure to see them.
   - No progress, or the peer's death: a wake-up whose retry would block
     again, with no consumption since the wait began, consumes the events
     and retries at once. That is how a dead peer (end-of-file, after its
     unmap-notify message) or a server's new client (accepted while
     consuming) is seen: a wait that wakes for them finds no progress. An
     end-of-file that arrives together with a notification whose retry
     does progress is not seen that way: so while the edge-triggered watch
     runs, the connection socket itself ([Stubs.hangup_fd]) is watched
     for its hang-up alone ([Engine.on_hangup]: EPOLLRDHUP, which no
     notification raises), and a hang-up consumes at once. As a backstop
     (a backend without such a descriptor, a server before its client
     connected), while an edge-triggered wake-up has not been followed by
     a consumption ([undrained]), a wait also arms a timer that consumes
     after [death_check_after] seconds if someone still waits then
     ([state] also consumes first while [undrained]).
   - A hostile peer flooding notifications: each arrival wakes the waiters
     once; a retry without progress consumes (up to 64 messages per
     recvmmsg) and retries once more without spinning (the retry that
     found no progress spun already): one spin per wake-up, as under the
     level-triggered poller, which consumes first and then retries.
     A flood that fills the queue only drops the flooder's own
     notifications, which it could withhold anyway; the peer's death still
     wakes us (end-of-file is an arrival, even on a full queue).
   - When the last waiter is gone, what an edge-triggered watch left
     queued is consumed before the watch stops: a new watch would else
     fire at once for it.
   The adaptive spin learns how long waits last from [consume_events]
   (Endpoint::set_nonblocking_spin): edge-triggered, it learns from the
   wake-ups that consume, not from every one. *)
let drain_every = 48
let drain_bound = 2 * drain_every
(* VCHAN_LWT_DEATH_CHECK=<seconds> changes it, for tests that must see
   the hang-up watch work alone. *)
let death_check_after =
  match Option.bind (Sys.getenv_opt "VCHAN_LWT_DEATH_CHECK") float_of_string_opt with
  | Some s when s > 0. -> s
  | _ -> 0.25

let stop_hangup t =
  Option.iter Lwt_engine.stop_event t.hangup;
  t.hangup <- None;
  t.hangup_fd <- -1

(* Consume the events, then wake every waiter to retry. Consuming may
   close the connection socket (once the peer is gone) or make one (a
   server accepts its client while consuming): the hang-up watch follows
   ([hangup_fd] changed), and is otherwise left alone (no epoll_ctl per
   consumption). Nothing between the close in Rust and the stop here can
   register the reused descriptor number with the engine. *)
let rec drain t =
  t.armed <- 0;
  t.undrained <- false;
  t.drains <- t.drains + 1;
  if (not t.closed) && Stubs.consume_events t.h = Stubs.e_error then
    t.failed <- Some (Stubs.error_of_kind (Stubs.last_error t.h));
  if t.hangup <> None && (t.failed <> None || Stubs.hangup_fd t.h <> t.hangup_fd) then
    stop_hangup t;
  start_hangup t;
  Lwt_condition.broadcast t.changed ()

and start_hangup t =
  if t.edge && t.watch <> None && t.hangup = None && t.failed = None && not t.closed then begin
    let fd = Stubs.hangup_fd t.h in
    if fd >= 0 then begin
      t.hangup <- Engine.on_hangup (Obj.magic fd : Unix.file_descr) (fun _ -> drain t);
      if t.hangup <> None then t.hangup_fd <- fd
    end
  end

(* Stop watching (and the death check: nobody waits any more), so that the
   engine does not keep the endpoint reachable. *)
let stop_poller t =
  Option.iter Lwt_engine.stop_event t.watch;
  t.watch <- None;
  stop_hangup t;
  Option.iter Lwt_engine.stop_event t.death_check;
  t.death_check <- None

(* The descriptor fired. Waiters retry now; those that must wait again count
   again. *)
let woke t =
  if (not t.edge) || t.armed >= drain_every then drain t
  else begin
    t.undrained <- true;
    Lwt_condition.broadcast t.changed ()
  end;
  if t.waiters = 0 || t.failed <> None || t.closed then begin
    (* Nobody waits: stop watching. Consume what an edge-triggered watch
       left queued first, else the next watch would fire at once for it. *)
    if t.edge && t.undrained && t.failed = None && not t.closed then drain t;
    stop_poller t
  end

let start_poller t =
  if t.watch = None && not t.closed then begin
    let fd = Lwt_unix.unix_file_descr t.lfd in
    let f _ = woke t in
    match if t.edge_ok then Engine.on_readable_edge fd f else None with
    | Some ev ->
        t.watch <- Some ev;
        t.edge <- true;
        start_hangup t
    | None ->
        t.watch <- Some (Lwt_engine.on_readable fd f);
        t.edge <- false
  end

let start_death_check t =
  if t.edge && t.undrained && t.death_check = None then
    t.death_check <-
      Some
        (Lwt_engine.on_timer death_check_after false (fun ev ->
             Lwt_engine.stop_event ev;
             t.death_check <- None;
             if t.undrained && t.waiters > 0 && not t.closed then drain t))

(* After an operation answered "would block" (having armed its
   notification): wait until it is worth retrying, then [k woken] — or fail
   if consuming the events failed. [woken] is true when the wait ended by an
   edge-triggered wake-up with no consumption since the wait began; an
   operation whose retry would block again then passes it back, and the
   events are consumed before it retries once more. *)
let retry t ~woken k =
  if t.closed then k false
  else if woken || t.armed >= drain_bound then begin
    drain t;
    match t.failed with
    | Some e -> Lwt.return (Error e)
    | None when woken ->
        (* This operation spun in vain already since it woke: retry without
           spinning again (a flood of notifications gets one spin per
           wake-up, as under a level-triggered poller). *)
        ignore (Stubs.set_spin t.h 0 : int);
        Fun.protect
          ~finally:(fun () -> ignore (Stubs.set_spin t.h 1 : int))
          (fun () -> k false)
    | None -> k false
  end
  else begin
    t.armed <- t.armed + 1;
    let drains = t.drains in
    let woken = Lwt_condition.wait t.changed in
    t.waiters <- t.waiters + 1;
    Lwt.on_termination woken (fun () -> t.waiters <- t.waiters - 1);
    start_poller t;
    start_death_check t;
    woken >>= fun () ->
    match t.failed with
    | Some e -> Lwt.return (Error e)
    | None -> k (t.edge && t.drains = drains)
  end

let last_error t = Stubs.error_of_kind (Stubs.last_error t.h)

let state t =
  if t.closed then Exited
  else begin
    if t.undrained then drain t;
    let s = Stubs.state t.h in
    if s = Stubs.state_waiting then Waiting
    else if s = Stubs.state_connected then Connected
    else Exited
  end

let accept t =
  let rec go woken =
    match state t with
    | Waiting -> retry t ~woken go
    | Connected | Exited -> Lwt.return (Ok ())
  in
  go false >>= function Ok () -> Lwt.return_unit | Error e -> fail_with e

let is_server t = Stubs.is_server t.h
let peer_vanished t =
  if t.undrained && not t.closed then drain t;
  Stubs.peer_vanished t.h = 1

let connect ?backend ?timeout ~domid ~port () =
  match backend_name backend with
  | exception Error.Vchan e -> fail_with e
  | backend ->
      let port = Port.to_string port in
      let timeout =
        match timeout with
        | Some s when Float.is_nan s || s < 0. -> Error s
        | Some s when Float.is_finite s -> Ok (Some s)
        | Some _ | None -> Ok None (* infinity: no deadline *)
      in
      match timeout with
      | Error s ->
          fail_with
            (`Invalid_argument
              (Printf.sprintf
                 "invalid timeout %g: expected seconds >= 0 (or infinity)" s))
      | Ok timeout ->
      let deadline = Option.map (fun s -> Unix.gettimeofday () +. s) timeout in
      let rec attempt pause =
        match Stubs.try_connect backend domid port with
        | Error e -> fail_with (Stubs.error_of_kind e)
        | Ok h when h <> 0 -> Lwt.return (make ~backend h)
        | Ok _ -> (
            let now = Unix.gettimeofday () in
            match deadline with
            | Some d when now >= d -> fail_with `Timeout
            | _ ->
                let nap =
                  match deadline with
                  | Some d -> Float.min pause (d -. now)
                  | None -> pause
                in
                Lwt_unix.sleep nap >>= fun () ->
                attempt (Float.min (pause *. 2.) 0.05))
      in
      attempt 0.001

let server ~domid ~port ?read_size ?write_size () =
  match listen ~domid ~port ?read_size ?write_size () with
  | exception Error.Vchan e -> fail_with e
  | t -> accept t >|= fun () -> t

let client ~domid ~port () = connect ~domid ~port ()

(* Acknowledge the last view. *)
let ack t =
  if t.pending > 0 then begin
    let n = t.pending in
    t.pending <- 0;
    let r = Stubs.consume t.h n in
    if r < 0 && r <> Stubs.e_closed then Error (last_error t) else Ok ()
  end
  else Ok ()

let close t =
  if not t.closed then begin
    (* The last view is done with: acknowledge it, so that a peer waiting
       for its bytes to be read ([linger]) sees them read. *)
    ignore (ack t : (unit, error) result);
    t.closed <- true;
    (* Stop Lwt watching the descriptor (Rust closes it now) and wake the
       waiters: they see [closed]. *)
    stop_poller t;
    Lwt_unix.abort t.lfd Aborted;
    Lwt_condition.broadcast t.changed ();
    ignore (Stubs.close t.h : (unit, int * string) result)
  end;
  Lwt.return_unit

let shutdown t = function
  | `read ->
      t.read_shut <- true;
      Lwt.return_unit
  | `write | `read_write -> close t

let eof = Lwt.return (Ok `Eof)

let read t =
  let rec go woken =
    if t.closed || t.read_shut then eof
    else
      let r = Stubs.peek t.h in
      if r > 0 then begin
        let off = r lsr 32 and len = r land 0xffff_ffff in
        t.pending <- len;
        Lwt.return (Ok (`Data (Cstruct.of_bigarray ~off ~len t.ring)))
      end
      else if r = Stubs.e_again then retry t ~woken go
      else if r = Stubs.e_eof || r = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go false

let read_into t (buf : Cstruct.t) =
  let rec go woken =
    if t.closed || t.read_shut then eof
    else
      let n = Stubs.read t.h buf.buffer buf.off buf.len in
      if n > 0 then Lwt.return (Ok (`Data n))
      else if n = 0 then Lwt.return (Ok (`Data 0))
      else if n = Stubs.e_again then retry t ~woken go
      else if n = Stubs.e_eof || n = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go false

let closed_error = Lwt.return (Error `Closed)

let write t (buf : Cstruct.t) =
  let rec go woken off len =
    if len = 0 then Lwt.return (Ok ())
    else if t.closed then closed_error
    else
      let n = Stubs.write t.h buf.buffer off len in
      if n > 0 then go false (off + n) (len - n)
      else if n = Stubs.e_again then
        retry t ~woken (fun woken -> go woken off len)
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  if t.closed then closed_error else go false buf.off buf.len

let write_from_fd t fd =
  let rec go woken =
    if t.closed then closed_error
    else
      let n = Stubs.write_from_fd t.h (Obj.magic (fd : Unix.file_descr) : int) in
      if n > 0 then Lwt.return (Ok (`Wrote n))
      else if n = 0 then Lwt.return (Ok `Fd_empty)
      else if n = Stubs.e_eof then Lwt.return (Ok `Eof)
      else if n = Stubs.e_again then retry t ~woken go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go false

let linger t =
  let rec go woken =
    if t.closed then closed_error
    else
      let n = Stubs.linger t.h in
      if n = 0 then Lwt.return (Ok ())
      else if n = Stubs.e_again then retry t ~woken go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go false

let rec writev t = function
  | [] -> Lwt.return (Ok ())
  | b :: bs -> (
      write t b >>= function Ok () -> writev t bs | Error _ as e -> Lwt.return e)

let send t (buf : Cstruct.t) =
  let rec go woken =
    if t.closed then closed_error
    else
      let n = Stubs.send t.h buf.buffer buf.off buf.len in
      if n >= 0 then Lwt.return (Ok ())
      else if n = Stubs.e_again then retry t ~woken go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go false

let recv t (buf : Cstruct.t) =
  let rec go woken =
    if t.closed || t.read_shut then eof
    else
      let n = Stubs.recv t.h buf.buffer buf.off buf.len in
      if n >= 0 then Lwt.return (Ok (`Data ()))
      else if n = Stubs.e_again then retry t ~woken go
      else if n = Stubs.e_eof || n = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go false

let data_ready t =
  if t.closed then 0
  else
    (* Bytes of the current view are still counted by the ring: they are
       not new. *)
    let n = Stubs.data_ready t.h in
    if n < 0 then 0 else n - t.pending

let buffer_space t =
  if t.closed then 0
  else
    let n = Stubs.buffer_space t.h in
    if n < 0 then 0 else n
