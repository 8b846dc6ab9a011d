type port = int
type event = int

type channel = {
  port : port;
  mutable count : event;  (** Events received so far. *)
  mutable waiting : event Lwt.u list;
      (** Who waits for the next event, newest first: woken by [send]. *)
  mutable peer : channel option;
  mutable closed : bool;
}

let initial = 0

let port_of_string s =
  match int_of_string_opt s with
  | Some p when p >= 0 -> Ok p
  | _ -> Error (`Msg (Printf.sprintf "invalid event channel port %S" s))

let string_of_port = string_of_int
let listening : (port, channel) Hashtbl.t = Hashtbl.create 8
let open_channels = ref 0
let next_port = ref 1

let create () =
  let port = !next_port in
  incr next_port;
  incr open_channels;
  { port; count = initial; waiting = []; peer = None; closed = false }

let listen _domid =
  let c = create () in
  Hashtbl.replace listening c.port c;
  (c.port, c)

let connect _domid port =
  match Hashtbl.find_opt listening port with
  | None -> failwith (Printf.sprintf "In_memory_events.connect: no port %d" port)
  | Some server ->
      Hashtbl.remove listening port;
      let c = create () in
      c.peer <- Some server;
      server.peer <- Some c;
      c

let send c =
  match c.peer with
  | Some p when not p.closed ->
      p.count <- p.count + 1;
      if p.waiting <> [] then begin
        let woken = List.rev p.waiting in
        p.waiting <- [];
        (* Later, not now: both ends run in one scheduler, and an echo
           woken at once would recurse into this send. *)
        List.iter (fun u -> Lwt.wakeup_later u p.count) woken
      end
  | _ -> ()

(* A promise resolved by the next [send] (no condition variable, no bind:
   In_memory's round trips are mostly this wake-up). *)
let recv c ev =
  if c.count > ev then Lwt.return c.count
  else
    let p, u = Lwt.wait () in
    c.waiting <- u :: c.waiting;
    p

let close c =
  if not c.closed then begin
    c.closed <- true;
    decr open_channels;
    Hashtbl.remove listening c.port
  end

let assert_cleaned_up () =
  if Hashtbl.length listening > 0 then
    failwith
      (Printf.sprintf "In_memory_events: %d port(s) still listening"
         (Hashtbl.length listening));
  if !open_channels > 0 then
    failwith
      (Printf.sprintf "In_memory_events: %d channel(s) still open" !open_channels)
