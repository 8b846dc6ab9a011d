module Port = Vchan_rs.Port
module Error = Vchan_rs.Error

open Lwt.Infix

(* The endpoint of each backend: the functor applied to its plumbing. *)
module U = Vchan_rs.Endpoint.Make_with (Plumbing.Make (struct
  let name = Some "unix"
end))

module X = Vchan_rs.Endpoint.Make_with (Plumbing.Make (struct
  let name = Some "xen"
end))

type t = U of U.t | X of X.t
type flow = t
type port = Port.t
type error = Error.t
type write_error = Error.t
type state = Vchan_rs.Endpoint.state = Waiting | Connected | Exited

let pp_error = Error.pp
let pp_write_error = Error.pp
let fail_with e = Lwt.fail (Error.Vchan e)

let backend = function
  | Some b -> b
  | None -> (
      match Backend.default () with
      | Ok b -> b
      | Error (`Msg m) -> raise (Error.Vchan (`Unavailable m)))

(* Endpoints not yet collected keep their memory (and, for a server of the
   unix backend, its files). At exit, collect those nobody can reach any
   more. *)
let made = ref false

let () =
  at_exit (fun () ->
      if !made then begin
        Gc.full_major ();
        Gc.full_major ()
      end)

let own_domid ?backend:b () =
  match Stubs.own_domid (Some (Backend.to_string (backend b))) with
  | Ok d -> d
  | Error e -> raise (Error.Vchan (Stubs.error_of_kind e))

(* The plumbing's store writes at once: so does [listen]. *)
let now p =
  match Lwt.state p with
  | Lwt.Return t -> t
  | Lwt.Fail e -> raise e
  | Lwt.Sleep -> invalid_arg "Endpoint.listen: the rendezvous was not written at once"

let listen ?backend:b ~domid ~port ?(read_size = 65536) ?(write_size = 65536) () =
  made := true;
  match backend b with
  | Backend.Unix -> U (now (U.listen ~domid ~port ~read_size ~write_size ()))
  | Backend.Xen -> X (now (X.listen ~domid ~port ~read_size ~write_size ()))

let accept = function U t -> U.accept t | X t -> X.accept t

let connect ?backend:b ?timeout ~domid ~port () =
  match (backend b, timeout) with
  | exception Error.Vchan e -> fail_with e
  | _, Some s when Float.is_nan s || s < 0. ->
      fail_with
        (`Invalid_argument
          (Printf.sprintf "invalid timeout %g: expected seconds >= 0 (or infinity)" s))
  | b, _ ->
      made := true;
      let attempt () =
        match b with
        | Backend.Unix -> U.client ~domid ~port () >|= fun t -> U t
        | Backend.Xen -> X.client ~domid ~port () >|= fun t -> X t
      in
      (* A stale rendezvous (its server was killed): wait for a new one. *)
      let rec go pause =
        Lwt.catch attempt (function
          | Vchan_rs.Endpoint.Stale ->
              Lwt_unix.sleep pause >>= fun () -> go (Float.min (pause *. 2.) 0.05)
          | e -> Lwt.fail e)
      in
      match timeout with
      | Some s when Float.is_finite s ->
          Lwt.pick [ go 0.001; (Lwt_unix.sleep s >>= fun () -> fail_with `Timeout) ]
      | _ -> go 0.001

let server ~domid ~port ?read_size ?write_size () =
  match listen ~domid ~port ?read_size ?write_size () with
  | exception Error.Vchan e -> fail_with e
  | t -> accept t >|= fun () -> t

let client ~domid ~port () = connect ~domid ~port ()
let is_server = function U t -> U.is_server t | X t -> X.is_server t
let state = function U t -> U.state t | X t -> X.state t
let peer_vanished = function U t -> U.peer_vanished t | X t -> X.peer_vanished t
let data_ready = function U t -> U.data_ready t | X t -> X.data_ready t
let buffer_space = function U t -> U.buffer_space t | X t -> X.buffer_space t
let read = function U t -> U.read t | X t -> X.read t
let read_into = function U t -> U.read_into t | X t -> X.read_into t
let recv = function U t -> U.recv t | X t -> X.recv t
let write = function U t -> U.write t | X t -> X.write t
let writev = function U t -> U.writev t | X t -> X.writev t
let send = function U t -> U.send t | X t -> X.send t
let linger = function U t -> U.linger t | X t -> X.linger t
let shutdown = function U t -> U.shutdown t | X t -> X.shutdown t
let close = function U t -> U.close t | X t -> X.close t

let write_from_fd t fd =
  let read view = Plumbing.fd_read fd view in
  (match t with U t -> U.fill t read | X t -> X.fill t read) >|= function
  | Ok n when n > 0 -> Ok (`Wrote n)
  | Ok 0 -> Ok `Eof
  | Ok n when n = Plumbing.eagain -> Ok `Fd_empty
  | Ok n -> Error (`System ("read: " ^ Unix.error_message (Stubs.unix_error_of_errno (-n))))
  | Error _ as e -> e
