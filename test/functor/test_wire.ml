(* The functor path speaks the same wire as everything else: an endpoint of
   Vchan_rs.Endpoint.Make over modules written here — pages mapped from the
   unix backend's shared-memory files, an EVENTS over its event channel
   sockets, a CONFIGURATION reading its store directory — is the client of
   a vchan-rs.lwt-unix server in another process (this executable re-run
   with VCHAN_RS_WIRE_CHILD set, domain 0). The child echoes what it
   reads; the test moves data both ways at once and compares digests, with
   in-page rings and with rings in their own pages. *)

open Lwt.Infix

let fail fmt = Printf.ksprintf failwith fmt
let child_var = "VCHAN_RS_WIRE_CHILD"
let root () = Sys.getenv "VCHAN_UNIX_DIR"

(* ---- The unix backend as Mirage-style modules (client side only) ---- *)

(* Page [i] of share [id] of a domain is grant [id lsl 9 lor i], a page of
   the file gnt/<domid>/<id>. *)
module Memory = struct
  type grant = int32

  let grant_of_int32 g = g
  let int32_of_grant g = g

  type share = unit

  let grants_of_share () = []
  let buf_of_share () = invalid_arg "client only"
  let share ~domid:_ ~npages:_ ~rw:_ = invalid_arg "client only"
  let unshare () = Lwt.return_unit

  type mapping = { view : Vchan_rs.S.page }

  let buf_of_mapping m = m.view
  let mapped = ref 0

  (* Writable mappings even for [rw:false]: Unix.map_file maps read-write. *)
  let mapv ~grants ~rw:_ =
    match grants with
    | [] -> invalid_arg "mapv: no grants"
    | (domid, first) :: _ ->
        let id = Int32.to_int first lsr 9 and page = Int32.to_int first land 511 in
        List.iteri
          (fun i (_, g) ->
            if g <> Int32.add first (Int32.of_int i) then fail "mapv: grants not one run")
          grants;
        let file = Printf.sprintf "%s/gnt/%d/%d" (root ()) domid id in
        let fd = Unix.openfile file [ Unix.O_RDWR ] 0 in
        let len = List.length grants * 4096 in
        let ga =
          Unix.map_file fd ~pos:(Int64.of_int (page * 4096)) Bigarray.char
            Bigarray.c_layout true [| len |]
        in
        Unix.close fd;
        incr mapped;
        { view = Bigarray.array1_of_genarray ga }

  let map ~domid ~grant ~rw = mapv ~grants:[ (domid, grant) ] ~rw

  (* The GC unmaps the file when the view is gone. *)
  let unmap _ = decr mapped
end

(* An event channel port is the socket evtchn/<domid>/<port>.sock; a
   message "N" is a notification, end-of-file the peer's close. *)
module Events = struct
  type port = int

  let port_of_string s =
    match int_of_string_opt s with Some p -> Ok p | None -> Error (`Msg s)

  let string_of_port = string_of_int

  type channel = {
    fd : Lwt_unix.file_descr;
    mutable count : int;  (** Batches of messages received. *)
    mutable gone : bool;
    mutable polling : bool;
    changed : unit Lwt_condition.t;
  }
  type event = int

  let initial = 0
  let listen _ = invalid_arg "client only"

  let connect domid port =
    let fd = Lwt_unix.socket Unix.PF_UNIX Unix.SOCK_SEQPACKET 0 in
    let path = Printf.sprintf "%s/evtchn/%d/%d.sock" (root ()) domid port in
    let ufd = Lwt_unix.unix_file_descr fd in
    Unix.connect ufd (Unix.ADDR_UNIX path);
    Unix.set_nonblock ufd;
    { fd; count = 0; gone = false; polling = false; changed = Lwt_condition.create () }

  let send c =
    if not c.gone then
      try ignore (Unix.send (Lwt_unix.unix_file_descr c.fd) (Bytes.of_string "N") 0 1 [])
      with Unix.Unix_error ((Unix.EAGAIN | Unix.EPIPE | Unix.ECONNRESET), _, _) -> ()

  (* Consume what arrived; true if anything did. *)
  let drain c =
    let buf = Bytes.create 64 in
    let rec go any =
      match Unix.recv (Lwt_unix.unix_file_descr c.fd) buf 0 64 [] with
      | 0 ->
          c.gone <- true;
          true
      | _ -> go true
      | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) -> any
      | exception Unix.Unix_error (Unix.ECONNRESET, _, _) ->
          c.gone <- true;
          true
    in
    go false

  (* One poller at a time watches the socket, consumes what arrived and
     wakes every waiter. *)
  let poll c =
    if not c.polling then begin
      c.polling <- true;
      Lwt.async (fun () ->
          (if c.gone then Lwt_unix.sleep 0.01 >|= fun () -> true
           else Lwt_unix.wait_read c.fd >|= fun () -> drain c)
          >|= fun any ->
          if any || c.gone then c.count <- c.count + 1;
          c.polling <- false;
          Lwt_condition.broadcast c.changed ())
    end

  let rec recv c ev =
    if c.count > ev then Lwt.return c.count
    else begin
      let woken = Lwt_condition.wait c.changed in
      poll c;
      woken >>= fun () -> recv c ev
    end

  let close c = Lwt.async (fun () -> Lwt_unix.close c.fd)
end

(* The store is the directory store/ with xenstore's paths. *)
module Config = struct
  type t = { ring_ref : string; event_channel : string }

  let dir ~server ~client port =
    Printf.sprintf "%s/store/local/domain/%d/data/vchan/%d/%s" (root ()) server client
      (Vchan_rs.Port.to_string port)

  let write ~client_domid:_ ~port:_ _ = invalid_arg "client only"
  let delete ~client_domid:_ ~port:_ = invalid_arg "client only"

  let read_file f =
    let ic = open_in f in
    let s = input_line ic in
    close_in ic;
    String.trim s

  let rec read ~server_domid ~port =
    let d = dir ~server:server_domid ~client:1 port in
    match (read_file (d ^ "/ring-ref"), read_file (d ^ "/event-channel")) with
    | ring_ref, event_channel -> Lwt.return { ring_ref; event_channel }
    | exception (Sys_error _ | End_of_file) ->
        Lwt_unix.sleep 0.005 >>= fun () -> read ~server_domid ~port
end

module V = Vchan_rs.Endpoint.Make (Events) (Memory) (Config)

(* ---- The child: a vchan-rs.lwt-unix echo server ---- *)

module U = Vchan_rs_lwt_unix.Endpoint

let child spec =
  let name, r, w =
    match String.split_on_char ':' spec with
    | [ n; r; w ] -> (n, int_of_string r, int_of_string w)
    | _ -> fail "bad child spec %S" spec
  in
  let port = Result.get_ok (Vchan_rs.Port.of_string name) in
  Lwt_main.run
    ( U.server ~domid:1 ~port ~read_size:r ~write_size:w () >>= fun t ->
      let rec echo () =
        U.read t >>= function
        | Ok `Eof -> U.close t
        | Ok (`Data v) -> (
            U.write t v >>= function
            | Ok () -> echo ()
            | Error e -> fail "child write: %s" (Vchan_rs.Error.to_string e))
        | Error e -> fail "child read: %s" (Vchan_rs.Error.to_string e)
      in
      echo () );
  exit 0

(* ---- The test ---- *)

let spawn spec =
  let env = Array.append [| child_var ^ "=" ^ spec; "VCHAN_DOMID=0" |] (Unix.environment ()) in
  Unix.create_process_env Sys.executable_name [| Sys.executable_name |] env Unix.stdin
    Unix.stdout Unix.stderr

let echo_through ~name ~read_size ~write_size ~size () =
  let pid = spawn (Printf.sprintf "%s:%d:%d" name read_size write_size) in
  let port = Result.get_ok (Vchan_rs.Port.of_string name) in
  let data = Test_harness.pseudo_random ~seed:(Int64.of_int size) size in
  Lwt_main.run
    ( Lwt_unix.with_timeout 120. (fun () ->
          V.client ~domid:0 ~port () >>= fun t ->
          let send =
            let rec go off =
              if off >= size then Lwt.return_unit
              else
                let n = min 65536 (size - off) in
                V.write t (Cstruct.of_bytes ~off ~len:n data) >>= function
                | Ok () -> go (off + n)
                | Error e -> fail "write: %s" (Vchan_rs.Error.to_string e)
            in
            go 0
          in
          let back = Bytes.create size in
          let receive =
            let rec go got =
              if got >= size then Lwt.return_unit
              else
                V.read t >>= function
                | Ok (`Data v) ->
                    let n = Cstruct.length v in
                    if got + n > size then fail "echo sent more than it got";
                    Cstruct.blit_to_bytes v 0 back got n;
                    go (got + n)
                | Ok `Eof -> fail "`Eof after %d of %d bytes" got size
                | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)
            in
            go 0
          in
          Lwt.join [ send; receive ] >>= fun () ->
          if Digest.bytes back <> Digest.bytes data then fail "%s: the echo differs" name;
          V.close t)
    >>= fun () ->
      (* The server saw our close, closed, and exited cleanly. *)
      Lwt_unix.waitpid [] pid >|= function
      | _, Unix.WEXITED 0 -> ()
      | _, _ -> fail "the lwt-unix server failed" );
  if !Memory.mapped <> 0 then fail "%d mappings left" !Memory.mapped

let () =
  match Sys.getenv_opt child_var with
  | Some spec -> child spec
  | None ->
      ignore (Test_harness.unix_backend_root () : string);
      Test_harness.run "vchan-rs functor on the wire"
        [
          ( "functor client, lwt-unix server",
            [
              ( "in-page rings (1 KiB / 2 KiB), 4 MiB echoed",
                echo_through ~name:"inpage" ~read_size:1024 ~write_size:2048 ~size:(4 lsl 20) );
              ( "rings of their own pages (64 KiB / 16 KiB), 32 MiB echoed",
                echo_through ~name:"pages" ~read_size:65536 ~write_size:16384 ~size:(32 lsl 20) );
            ] );
        ]
