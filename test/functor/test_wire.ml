(* The functor path speaks the same wire as everything else: an endpoint of
   Vchan_rs.Endpoint.Make over modules written here — pages shared and
   mapped as the unix backend's shared-memory files, an EVENTS over its
   event channel sockets, a CONFIGURATION over its store directory — talks
   to a vchan-rs-unix endpoint in another process (this executable
   re-run with VCHAN_RS_WIRE_CHILD set), as client and as server. The child
   echoes what it reads; the test moves data both ways at once and compares
   digests, with in-page rings and with rings in their own pages. *)

open Lwt.Infix

let fail fmt = Printf.ksprintf failwith fmt
let child_var = "VCHAN_RS_WIRE_CHILD"
let root () = Sys.getenv "VCHAN_UNIX_DIR"
let own () = int_of_string (Sys.getenv "VCHAN_DOMID")

let flock = Test_flock.lock

let rec mkdir_p d =
  if not (Sys.file_exists d) then begin
    mkdir_p (Filename.dirname d);
    try Unix.mkdir d 0o700 with Unix.Unix_error (Unix.EEXIST, _, _) -> ()
  end

(* A new file [dir/name], held by our flock (the backend's proof of life)
   until [fd] is closed; None if the name is taken. *)
let create_locked dir name =
  mkdir_p dir;
  match Unix.openfile (Filename.concat dir name) [ Unix.O_RDWR; Unix.O_CREAT; Unix.O_EXCL ] 0o600 with
  | fd ->
      if not (flock fd) then fail "flock %s/%s" dir name;
      Some fd
  | exception Unix.Unix_error (Unix.EEXIST, _, _) -> None

let rec fresh dir ~max f =
  let n = 1 + Random.int max in
  match create_locked dir (string_of_int n) with Some fd -> f n fd | None -> fresh dir ~max f

(* ---- The unix backend as Mirage-style modules (client side only) ---- *)

(* Page [i] of share [id] of a domain is grant [id lsl 9 lor i]: the lock
   file gnt/<domid>/<id> names the owner's sealed memfd as
   "memfd <pid> <fd> <inode> <pages>", which a mapper opens through /proc. *)
module Memory = struct
  type grant = int32

  let grant_of_int32 g = g
  let int32_of_grant g = g

  type share = {
    grants : grant list;
    buf : Vchan_rs.S.page;
    file : string;
    lock : Unix.file_descr;
    memfd : Unix.file_descr;
  }

  let grants_of_share s = s.grants
  let buf_of_share s = s.buf
  let shared = ref 0

  let map_fd fd ~page ~len =
    Bigarray.array1_of_genarray
      (Unix.map_file fd ~pos:(Int64.of_int (page * 4096)) Bigarray.char Bigarray.c_layout true
         [| len |])

  let share ~domid:_ ~npages ~rw:_ =
    let dir = Printf.sprintf "%s/gnt/%d" (root ()) (own ()) in
    let memfd = Test_flock.sealed_memfd (npages * 4096) in
    fresh dir ~max:0x3fffff (fun id lock ->
        let text =
          Printf.sprintf "memfd %d %d %d %d\n" (Unix.getpid ()) (Obj.magic memfd : int)
            (Unix.fstat memfd).Unix.st_ino npages
        in
        ignore (Unix.write_substring lock text 0 (String.length text));
        incr shared;
        {
          grants = List.init npages (fun i -> Int32.of_int ((id lsl 9) lor i));
          buf = map_fd memfd ~page:0 ~len:(npages * 4096);
          file = Printf.sprintf "%s/%d" dir id;
          lock;
          memfd;
        })

  (* The GC unmaps the memory when the views are gone. *)
  let unshare s =
    Sys.remove s.file;
    Unix.close s.lock;
    Unix.close s.memfd;
    decr shared;
    Lwt.return_unit

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
        let ic = open_in (Printf.sprintf "%s/gnt/%d/%d" (root ()) domid id) in
        let published = input_line ic in
        close_in ic;
        let fd =
          Scanf.sscanf published "memfd %d %d %d %d" (fun pid fd ino _ ->
              let fd = Unix.openfile (Printf.sprintf "/proc/%d/fd/%d" pid fd) [ Unix.O_RDWR ] 0 in
              if (Unix.fstat fd).Unix.st_ino <> ino then fail "grant %ld: not the published memfd" first;
              fd)
        in
        let view = map_fd fd ~page ~len:(List.length grants * 4096) in
        Unix.close fd;
        incr mapped;
        { view }

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
    mutable fd : Lwt_unix.file_descr option;  (** The connection. *)
    listener : (Lwt_unix.file_descr * string) option;  (** A server's, until accepted. *)
    lock : (Unix.file_descr * string) option;  (** A server's port, flocked. *)
    mutable count : int;  (** Batches of messages received. *)
    mutable gone : bool;
    mutable polling : bool;
    changed : unit Lwt_condition.t;
  }

  type event = int

  let initial = 0

  let channel ?listener ?lock fd =
    { fd; listener; lock; count = 0; gone = false; polling = false; changed = Lwt_condition.create () }

  let seqpacket () =
    let fd = Lwt_unix.socket Unix.PF_UNIX Unix.SOCK_SEQPACKET 0 in
    Unix.set_nonblock (Lwt_unix.unix_file_descr fd);
    fd

  let listen _remote =
    let dir = Printf.sprintf "%s/evtchn/%d" (root ()) (own ()) in
    fresh dir ~max:65535 (fun port lock ->
        let path = Printf.sprintf "%s/%d.sock" dir port in
        let l = seqpacket () in
        Unix.bind (Lwt_unix.unix_file_descr l) (Unix.ADDR_UNIX path);
        Unix.listen (Lwt_unix.unix_file_descr l) 1;
        (port, channel ~listener:(l, path) ~lock:(lock, Printf.sprintf "%s/%d" dir port) None))

  let connect domid port =
    let fd = seqpacket () in
    let path = Printf.sprintf "%s/evtchn/%d/%d.sock" (root ()) domid port in
    Unix.connect (Lwt_unix.unix_file_descr fd) (Unix.ADDR_UNIX path);
    channel (Some fd)

  (* A server takes its one client's connection when it arrives. *)
  let accept c =
    match (c.fd, c.listener) with
    | None, Some (l, path) -> (
        match Unix.accept ~cloexec:true (Lwt_unix.unix_file_descr l) with
        | fd, _ ->
            Unix.set_nonblock fd;
            c.fd <- Some (Lwt_unix.of_unix_file_descr ~blocking:false fd);
            Sys.remove path;
            Lwt.async (fun () -> Lwt_unix.close l)
        | exception Unix.Unix_error ((Unix.EAGAIN | Unix.EWOULDBLOCK), _, _) -> ())
    | _ -> ()

  let send c =
    accept c;
    match c.fd with
    | Some fd when not c.gone -> (
        try ignore (Unix.send (Lwt_unix.unix_file_descr fd) (Bytes.of_string "N") 0 1 [])
        with Unix.Unix_error ((Unix.EAGAIN | Unix.EPIPE | Unix.ECONNRESET), _, _) -> ())
    | _ -> ()

  (* Consume what arrived; true if anything did. *)
  let drain c fd =
    let buf = Bytes.create 64 in
    let rec go any =
      match Unix.recv (Lwt_unix.unix_file_descr fd) buf 0 64 [] with
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
          (match (c.fd, c.listener) with
           | _ when c.gone -> Lwt_unix.sleep 0.01 >|= fun () -> true
           | Some fd, _ -> Lwt_unix.wait_read fd >|= fun () -> drain c fd
           | None, Some (l, _) ->
               Lwt_unix.wait_read l >|= fun () ->
               accept c;
               true
           | None, None -> Lwt.return true)
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

  let close c =
    Option.iter (fun fd -> Lwt.async (fun () -> Lwt_unix.close fd)) c.fd;
    Option.iter
      (fun (l, path) ->
        (try Sys.remove path with Sys_error _ -> ());
        Lwt.async (fun () -> Lwt_unix.close l))
      (if c.fd = None then c.listener else None);
    Option.iter
      (fun (fd, path) ->
        Sys.remove path;
        Unix.close fd)
      c.lock
end

(* The store is the directory store/ with xenstore's paths. *)
module Config = struct
  type t = { ring_ref : string; event_channel : string }

  let dir ~server ~client port =
    Printf.sprintf "%s/store/local/domain/%d/data/vchan/%d/%s" (root ()) server client
      (Vchan_rs.Port.to_string port)

  (* Both leaves at once: written in a temporary directory, renamed. *)
  (* The peer's sweep may prune an empty parent before our mkdir: again, as
     the Rust store does. *)
  let write ~client_domid ~port t =
    let d = dir ~server:(own ()) ~client:client_domid port in
    let tmp = Printf.sprintf "%s/.tmp-%d-0" (Filename.dirname d) (Unix.getpid ()) in
    let rec attempt n =
      mkdir_p (Filename.dirname d);
      match Unix.mkdir tmp 0o700 with
      | () -> ()
      | exception Unix.Unix_error (Unix.ENOENT, _, _) when n > 0 -> attempt (n - 1)
    in
    attempt 10;
    List.iter
      (fun (name, v) ->
        let oc = open_out (Filename.concat tmp name) in
        output_string oc v;
        close_out oc)
      [ ("ring-ref", t.ring_ref); ("event-channel", t.event_channel) ];
    Unix.rename tmp d;
    Lwt.return_unit

  (* The peer's Rust backend may prune the emptied directory (its sweep
     removes empty store nodes) between our unlinks and our rmdir. *)
  let delete ~client_domid ~port =
    let d = dir ~server:(own ()) ~client:client_domid port in
    let unless_gone f x = try f x with Unix.Unix_error (Unix.ENOENT, _, _) -> () in
    List.iter (fun f -> unless_gone Unix.unlink (Filename.concat d f)) [ "ring-ref"; "event-channel" ];
    unless_gone Unix.rmdir d;
    Lwt.return_unit

  let read_file f =
    let ic = open_in f in
    let s = input_line ic in
    close_in ic;
    String.trim s

  let rec read ~server_domid ~port =
    let d = dir ~server:server_domid ~client:(own ()) port in
    match (read_file (d ^ "/ring-ref"), read_file (d ^ "/event-channel")) with
    | ring_ref, event_channel -> Lwt.return { ring_ref; event_channel }
    | exception (Sys_error _ | End_of_file) ->
        Lwt_unix.sleep 0.005 >>= fun () -> read ~server_domid ~port
end

module V = Vchan_rs.Endpoint.Make (Events) (Memory) (Config)

(* ---- The child: a vchan-rs-unix echo server ---- *)

module U = Vchan_rs_lwt_unix.Endpoint

(* Echo on [t] until the end of the stream, then close. The functor end
   closes right after its last read, whose view only a next read would
   acknowledge: its close must acknowledge it, so [linger] finds every
   echoed byte read. *)
let rec echo t =
  U.read t >>= function
  | Ok `Eof -> (
      U.linger t >>= function
      | Ok () -> U.close t
      | Error e -> fail "child: the peer closed with echoed bytes unread: %s" (Vchan_rs.Error.to_string e))
  | Ok (`Data v) -> (
      U.write t v >>= function
      | Ok () -> echo t
      | Error e -> fail "child write: %s" (Vchan_rs.Error.to_string e))
  | Error e -> fail "child read: %s" (Vchan_rs.Error.to_string e)

(* [server:NAME:READ:WRITE] or [client:NAME]. *)
let child spec =
  (match String.split_on_char ':' spec with
  | [ "server"; name; r; w ] ->
      let port = Result.get_ok (Vchan_rs.Port.of_string name) in
      Lwt_main.run
        ( U.server ~domid:1 ~port ~read_size:(int_of_string r) ~write_size:(int_of_string w) ()
        >>= echo )
  | [ "client"; name ] ->
      let port = Result.get_ok (Vchan_rs.Port.of_string name) in
      Lwt_main.run (U.connect ~timeout:30. ~domid:0 ~port () >>= echo)
  | _ -> fail "bad child spec %S" spec);
  exit 0

(* ---- The test ---- *)

let spawn ~domid spec =
  let env =
    Array.append
      [| child_var ^ "=" ^ spec; Printf.sprintf "VCHAN_DOMID=%d" domid |]
      (Unix.environment ())
  in
  Unix.create_process_env Sys.executable_name [| Sys.executable_name |] env Unix.stdin
    Unix.stdout Unix.stderr

(* The functor endpoint as [`Client] of a lwt-unix server, or as [`Server]
   of a lwt-unix client; the lwt-unix end echoes. *)
let echo_through role ~name ~read_size ~write_size ~size () =
  let port = Result.get_ok (Vchan_rs.Port.of_string name) in
  let pid, connect =
    match role with
    | `Client ->
        Unix.putenv "VCHAN_DOMID" "1";
        ( spawn ~domid:0 (Printf.sprintf "server:%s:%d:%d" name read_size write_size),
          fun () -> V.client ~domid:0 ~port () )
    | `Server ->
        Unix.putenv "VCHAN_DOMID" "0";
        ( spawn ~domid:1 ("client:" ^ name),
          fun () -> V.server ~domid:1 ~port ~read_size ~write_size () )
  in
  let data = Test_harness.pseudo_random ~seed:(Int64.of_int size) size in
  Lwt_main.run
    ( Lwt_unix.with_timeout 120. (fun () ->
          connect () >>= fun t ->
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
      (* The peer saw our close, closed, and exited cleanly. *)
      Lwt_unix.waitpid [] pid >|= function
      | _, Unix.WEXITED 0 -> ()
      | _, _ -> fail "the lwt-unix peer failed" );
  if !Memory.mapped <> 0 then fail "%d mappings left" !Memory.mapped;
  if !Memory.shared <> 0 then fail "%d shares left" !Memory.shared

let () =
  match Sys.getenv_opt child_var with
  | Some spec -> child spec
  | None ->
      ignore (Test_harness.unix_backend_root () : string);
      (* The rendezvous directory, as the backend makes it (with its marker),
         whichever side comes first. *)
      mkdir_p (root ());
      let oc = open_out (Filename.concat (root ()) ".vchan-root") in
      output_string oc "vchan-rs unix backend rendezvous directory\n";
      close_out oc;
      Test_harness.run "vchan-rs functor on the wire"
        [
          ( "functor client, lwt-unix server",
            [
              ( "in-page rings (1 KiB / 2 KiB), 4 MiB echoed",
                echo_through `Client ~name:"inpage" ~read_size:1024 ~write_size:2048
                  ~size:(4 lsl 20) );
              ( "rings of their own pages (64 KiB / 16 KiB), 32 MiB echoed",
                echo_through `Client ~name:"pages" ~read_size:65536 ~write_size:16384
                  ~size:(32 lsl 20) );
            ] );
          ( "functor server, lwt-unix client",
            [
              ( "in-page rings (2 KiB / 1 KiB), 4 MiB echoed",
                echo_through `Server ~name:"sinpage" ~read_size:2048 ~write_size:1024
                  ~size:(4 lsl 20) );
              ( "rings of their own pages (16 KiB / 1 MiB), 32 MiB echoed",
                echo_through `Server ~name:"spages" ~read_size:16384 ~write_size:(1 lsl 20)
                  ~size:(32 lsl 20) );
            ] );
        ]
