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
  mutable waiters : int;  (* Operations waiting on [changed]. *)
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

let make h =
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
      waiters = 0;
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

let listen ?backend ~domid ~port ?(read_size = 65536) ?(write_size = 65536) ()
    =
  let backend = backend_name backend in
  match
    Stubs.listen backend domid (Port.to_string port) read_size write_size
  with
  | Ok h -> make h
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
   epoll_ctl per wait): a wake-up costs the engine's epoll_wait and one
   [consume_events] (one recvmmsg on the unix backend). It stops once no
   operation waits any more, so that an idle endpoint is not reachable from
   the engine (and can be collected). Before an operation answers "would
   block", the Rust side has spun briefly on the peer's index (at most
   100 us, 2 us once the peer is idle; see Endpoint::set_nonblocking_spin),
   so a busy peer is met without events at all. *)
let stop_poller t =
  Option.iter Lwt_engine.stop_event t.watch;
  t.watch <- None

let start_poller t =
  if t.watch = None && not t.closed then
    t.watch <-
      Some
        (Lwt_engine.on_readable (Lwt_unix.unix_file_descr t.lfd) (fun _ ->
             if (not t.closed) && Stubs.consume_events t.h = Stubs.e_error then
               t.failed <- Some (Stubs.error_of_kind (Stubs.last_error t.h));
             (* Waiters retry now; those that must wait again count again. *)
             Lwt_condition.broadcast t.changed ();
             if t.waiters = 0 || t.failed <> None || t.closed then stop_poller t))

(* After an operation answered "would block": wait until it is worth
   retrying, then [k ()] — or fail if consuming the events failed. *)
let retry t k =
  if t.closed then k ()
  else begin
    let woken = Lwt_condition.wait t.changed in
    t.waiters <- t.waiters + 1;
    Lwt.on_termination woken (fun () -> t.waiters <- t.waiters - 1);
    start_poller t;
    woken >>= fun () ->
    match t.failed with Some e -> Lwt.return (Error e) | None -> k ()
  end

let last_error t = Stubs.error_of_kind (Stubs.last_error t.h)

let state t =
  if t.closed then Exited
  else
    let s = Stubs.state t.h in
    if s = Stubs.state_waiting then Waiting
    else if s = Stubs.state_connected then Connected
    else Exited

let accept t =
  let rec go () =
    match state t with
    | Waiting -> retry t go
    | Connected | Exited -> Lwt.return (Ok ())
  in
  go () >>= function Ok () -> Lwt.return_unit | Error e -> fail_with e

let is_server t = Stubs.is_server t.h
let peer_vanished t = Stubs.peer_vanished t.h = 1

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
        | Ok h when h <> 0 -> Lwt.return (make h)
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

let close t =
  if not t.closed then begin
    t.closed <- true;
    t.pending <- 0;
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

(* Acknowledge the last view. *)
let ack t =
  if t.pending > 0 then begin
    let n = t.pending in
    t.pending <- 0;
    let r = Stubs.consume t.h n in
    if r < 0 && r <> Stubs.e_closed then Error (last_error t) else Ok ()
  end
  else Ok ()

let eof = Lwt.return (Ok `Eof)

let read t =
  let rec go () =
    if t.closed || t.read_shut then eof
    else
      let r = Stubs.peek t.h in
      if r > 0 then begin
        let off = r lsr 32 and len = r land 0xffff_ffff in
        t.pending <- len;
        Lwt.return (Ok (`Data (Cstruct.of_bigarray ~off ~len t.ring)))
      end
      else if r = Stubs.e_again then retry t go
      else if r = Stubs.e_eof || r = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go ()

let read_into t (buf : Cstruct.t) =
  let rec go () =
    if t.closed || t.read_shut then eof
    else
      let n = Stubs.read t.h buf.buffer buf.off buf.len in
      if n > 0 then Lwt.return (Ok (`Data n))
      else if n = 0 then Lwt.return (Ok (`Data 0))
      else if n = Stubs.e_again then retry t go
      else if n = Stubs.e_eof || n = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go ()

let closed_error = Lwt.return (Error `Closed)

let write t (buf : Cstruct.t) =
  let rec go off len =
    if len = 0 then Lwt.return (Ok ())
    else if t.closed then closed_error
    else
      let n = Stubs.write t.h buf.buffer off len in
      if n > 0 then go (off + n) (len - n)
      else if n = Stubs.e_again then
        retry t (fun () -> go off len)
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  if t.closed then closed_error else go buf.off buf.len

let write_from_fd t fd =
  let rec go () =
    if t.closed then closed_error
    else
      let n = Stubs.write_from_fd t.h (Obj.magic (fd : Unix.file_descr) : int) in
      if n > 0 then Lwt.return (Ok (`Wrote n))
      else if n = 0 then Lwt.return (Ok `Fd_empty)
      else if n = Stubs.e_eof then Lwt.return (Ok `Eof)
      else if n = Stubs.e_again then retry t go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go ()

let linger t =
  let rec go () =
    if t.closed then closed_error
    else
      let n = Stubs.linger t.h in
      if n = 0 then Lwt.return (Ok ())
      else if n = Stubs.e_again then retry t go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go ()

let rec writev t = function
  | [] -> Lwt.return (Ok ())
  | b :: bs -> (
      write t b >>= function Ok () -> writev t bs | Error _ as e -> Lwt.return e)

let send t (buf : Cstruct.t) =
  let rec go () =
    if t.closed then closed_error
    else
      let n = Stubs.send t.h buf.buffer buf.off buf.len in
      if n >= 0 then Lwt.return (Ok ())
      else if n = Stubs.e_again then retry t go
      else if n = Stubs.e_closed then closed_error
      else Lwt.return (Error (last_error t))
  in
  go ()

let recv t (buf : Cstruct.t) =
  let rec go () =
    if t.closed || t.read_shut then eof
    else
      let n = Stubs.recv t.h buf.buffer buf.off buf.len in
      if n >= 0 then Lwt.return (Ok (`Data ()))
      else if n = Stubs.e_again then retry t go
      else if n = Stubs.e_eof || n = Stubs.e_closed then eof
      else Lwt.return (Error (last_error t))
  in
  if t.closed || t.read_shut then eof
  else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go ()

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
