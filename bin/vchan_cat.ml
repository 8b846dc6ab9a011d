(* vchan-cat: proxy stdin/stdout over a vchan, like nc. *)

open Lwt.Infix
module E = Vchan_rs_lwt_unix.Endpoint

exception Failed of string

let failf fmt = Printf.ksprintf (fun s -> Lwt.fail (Failed s)) fmt

(* Standard descriptors for Lwt. Pipes and sockets are switched to
   non-blocking mode (and back at exit). Regular files never block. A
   terminal or another character device: writes go straight to it (waiting
   for it is the back-pressure we want anyway), but reads go through Lwt's
   thread pool, so that waiting for input never stalls the other direction. *)
let lwt_fd ~input fd =
  let direct () = Lwt_unix.of_unix_file_descr ~blocking:false ~set_flags:false fd in
  match (Unix.fstat fd).Unix.st_kind with
  | Unix.S_FIFO | Unix.S_SOCK ->
      Unix.set_nonblock fd;
      at_exit (fun () -> try Unix.clear_nonblock fd with _ -> ());
      direct ()
  | Unix.S_REG -> direct ()
  | _ when not input -> direct ()
  | _ -> Lwt_unix.of_unix_file_descr ~blocking:true ~set_flags:false fd
  | exception Unix.Unix_error _ ->
      Lwt_unix.of_unix_file_descr ~blocking:true ~set_flags:false fd

let unix_error what e = failf "%s: %s" what (Unix.error_message e)

(* stdin -> vchan. [sending] is true while bytes read from stdin are not all
   read by the peer yet. A regular file, pipe or socket is read straight
   into the write ring (E.write_from_fd: no buffer, no copy); anything else
   (a terminal) through a buffer and Lwt's thread pool. *)
let upstream t ~chunk ~sent ~sending =
  let stdin = lwt_fd ~input:true Unix.stdin in
  let direct =
    match (Unix.fstat Unix.stdin).Unix.st_kind with
    | Unix.S_REG | Unix.S_FIFO | Unix.S_SOCK -> true
    | _ | (exception Unix.Unix_error _) -> false
  in
  let buf = lazy (Lwt_bytes.create chunk) in
  let buffered () =
    Lwt.catch
      (fun () ->
        let buf = Lazy.force buf in
        Lwt_bytes.read stdin buf 0 chunk >|= fun n -> `Read (buf, n))
      (function
        | Unix.Unix_error (e, _, _) -> unix_error "stdin" e | e -> Lwt.fail e)
  in
  let rec loop () =
    (if direct then begin
       (* Sending while it waits for room in the ring; not while stdin has
          nothing to give (as on the buffered path). *)
       sending := true;
       E.write_from_fd t Unix.stdin >>= fun r ->
       sending := false;
       match r with
       | Ok (`Wrote n) -> Lwt.return (`Moved n)
       | Ok `Eof -> Lwt.return (`Moved 0)
       | Ok `Fd_empty -> Lwt_unix.wait_read stdin >|= fun () -> `Again
       (* The peer is gone: whether that is a failure depends on whether
          stdin still has data, as on the buffered path. *)
       | Error `Closed -> buffered ()
       | Error (`System m) -> failf "stdin: %s" m
       | Error e -> failf "vchan write: %s" (Vchan_rs.Error.to_string e)
     end
     else buffered ())
    >>= function
    | `Again -> loop ()
    | `Moved 0 | `Read (_, 0) -> (
        (* All of stdin is in the ring: wait until the peer has read it
           before closing (some peers drop what is unread once they see a
           close), still receiving meanwhile. *)
        sending := true;
        E.linger t >>= function
        | Ok () ->
            sending := false;
            Lwt.return `Stdin_eof
        | Error `Closed -> Lwt.return `Peer_gone
        | Error e -> failf "vchan: %s" (Vchan_rs.Error.to_string e))
    | `Moved n ->
        sent := !sent + n;
        loop ()
    | `Read (buf, n) -> (
        sending := true;
        E.write t (Cstruct.of_bigarray buf ~off:0 ~len:n) >>= function
        | Ok () ->
            sending := false;
            sent := !sent + n;
            loop ()
        | Error `Closed -> Lwt.return `Peer_gone
        | Error e -> failf "vchan write: %s" (Vchan_rs.Error.to_string e))
  in
  loop ()

(* vchan -> stdout, writing the zero-copy views of the ring. *)
let downstream t ~received =
  let stdout = lwt_fd ~input:false Unix.stdout in
  let rec write_all (v : Cstruct.t) off len =
    if len = 0 then Lwt.return_unit
    else
      Lwt.catch
        (fun () -> Lwt_bytes.write stdout v.buffer off len)
        (function
          | Unix.Unix_error (e, _, _) -> unix_error "stdout" e
          | e -> Lwt.fail e)
      >>= fun n -> write_all v (off + n) (len - n)
  in
  let rec loop () =
    E.read t >>= function
    | Ok `Eof -> Lwt.return `Peer_eof
    | Ok (`Data v) ->
        write_all v v.Cstruct.off v.Cstruct.len >>= fun () ->
        received := !received + v.Cstruct.len;
        loop ()
    | Error e -> failf "vchan read: %s" (Vchan_rs.Error.to_string e)
  in
  loop ()

(* What a wait is for, for messages: the backend, the domains, the port and
   the rendezvous (xenstore's path; under the unix backend, the directory
   that stands for xenstore), with a hint at the usual mistakes. *)
let describe_wait ~listen ~backend domid port =
  let backend =
    match backend with
    | Some b -> b
    | None -> ( match Vchan_rs_lwt_unix.Backend.default () with Ok b -> b | Error _ -> Unix)
  in
  let env v = match Sys.getenv_opt v with Some "" | None -> None | s -> s in
  let where =
    match backend with
    | Vchan_rs_lwt_unix.Backend.Unix ->
        let dir =
          match (env "VCHAN_UNIX_DIR", env "XDG_RUNTIME_DIR") with
          | Some d, _ -> d
          | None, Some x -> Filename.concat x "vchan"
          | None, None -> Printf.sprintf "/tmp/vchan-%d" (Unix.getuid ())
        in
        Printf.sprintf " in %s/store" dir
    | Xen -> ""
  in
  (* The backend's own answer (xenstore's domid under Xen); if it cannot
     say, the listen or connect that follows fails with the reason. *)
  let own =
    match E.own_domid ~backend () with
    | d -> string_of_int d
    | exception Vchan_rs.Error.Vchan _ -> "(unknown: the backend is unavailable)"
  in
  let server, client =
    if listen then (own, string_of_int domid) else (string_of_int domid, own)
  in
  Printf.sprintf
    "domain %s %s domain %s on port %s (backend %s; rendezvous \
     /local/domain/%s/data/vchan/%s/%s%s). Check the domain ids (under the \
     unix backend this process is domain $VCHAN_DOMID, default 0) and the \
     backend (--backend xen between Xen domains)"
    client
    (if listen then "to connect to" else "to find the server of")
    server (Vchan_rs.Port.to_string port)
    (Vchan_rs_lwt_unix.Backend.to_string backend)
    server client (Vchan_rs.Port.to_string port) where

(* Tell the user once, after [after] seconds, what we are still waiting for. *)
let still_waiting ~after what =
  let waiting =
    Lwt_unix.sleep after >|= fun () ->
    Printf.eprintf "vchan-cat: still waiting (%.0f s) for %s\n%!" after what
  in
  fun () -> Lwt.cancel waiting

let connect ~listen ~backend ~timeout ~buffer_size ~verbose domid port =
  let say fmt =
    Printf.ksprintf (fun s -> if verbose then prerr_endline ("vchan-cat: " ^ s)) fmt
  in
  let what = describe_wait ~listen ~backend domid port in
  if listen then begin
    let t =
      E.listen ?backend ~domid ~port ~read_size:buffer_size
        ~write_size:buffer_size ()
    in
    say "listening for domain %d on port %s" domid (Vchan_rs.Port.to_string port);
    let stop = still_waiting ~after:10. what in
    E.accept t >|= fun () ->
    stop ();
    say "connected";
    t
  end
  else
    let stop = still_waiting ~after:10. what in
    Lwt.catch
      (fun () -> E.connect ?backend ?timeout ~domid ~port ())
      (function
        | Vchan_rs.Error.Vchan `Timeout ->
            failf "timed out after %g s waiting for %s"
              (Option.value timeout ~default:0.) what
        | e -> Lwt.fail e)
    >|= fun t ->
    stop ();
    say "connected to domain %d on port %s" domid (Vchan_rs.Port.to_string port);
    t

let main listen no_stdin verbose buffer_size backend timeout domid port =
  Sys.set_signal Sys.sigpipe Sys.Signal_ignore;
  let sent = ref 0 and received = ref 0 and sending = ref false in
  let started = ref (Unix.gettimeofday ()) in
  let job () =
    connect ~listen ~backend ~timeout ~buffer_size ~verbose domid port
    >>= fun t ->
    started := Unix.gettimeofday ();
    let up =
      if no_stdin then fst (Lwt.wait ())
      else upstream t ~chunk:(max buffer_size (1 lsl 20)) ~sent ~sending
    in
    let down = downstream t ~received in
    Lwt.finalize
      (fun () ->
        Lwt.pick [ up; down ] >>= function
        | (`Peer_eof | `Peer_gone) when E.peer_vanished t ->
            failf "the peer vanished (its process died) without closing the vchan"
        | `Stdin_eof | `Peer_eof when not !sending -> Lwt.return_unit
        | `Stdin_eof | `Peer_eof | `Peer_gone ->
            failf "the peer closed the vchan before all of stdin was sent")
      (fun () -> E.close t)
  in
  let outcome =
    try Ok (Lwt_main.run (job ())) with
    | Failed m -> Error m
    | Vchan_rs.Error.Vchan e -> Error (Vchan_rs.Error.to_string e)
    | Unix.Unix_error (e, f, _) -> Error (f ^ ": " ^ Unix.error_message e)
  in
  match outcome with
  | Ok () ->
      if verbose then begin
        let dt = Unix.gettimeofday () -. !started in
        let moved = !sent + !received in
        Printf.eprintf
          "vchan-cat: sent %d bytes, received %d bytes in %.3f s (%.1f MB/s)\n%!"
          !sent !received dt
          (if dt > 0. then float moved /. dt /. 1e6 else 0.)
      end;
      0
  | Error m ->
      Printf.eprintf "vchan-cat: %s\n%!" m;
      1

open Cmdliner

let domid =
  let parse s = Vchan_rs.Domid.of_string s in
  Arg.conv ~docv:"DOMID" (parse, Format.pp_print_int)

let port =
  Arg.conv ~docv:"PORT"
    ( (fun s -> Vchan_rs.Port.of_string s),
      fun ppf p -> Format.pp_print_string ppf (Vchan_rs.Port.to_string p) )

let size =
  let parse s =
    match int_of_string_opt s with
    | Some n when n > 0 && n <= 1 lsl 20 -> Ok n
    | _ -> Error (`Msg (Printf.sprintf "invalid size %S: expected 1..1048576" s))
  in
  Arg.conv ~docv:"BYTES" (parse, Format.pp_print_int)

let backend =
  let parse s =
    match Vchan_rs_lwt_unix.Backend.of_string s with
    | Ok b -> Ok (Some b)
    | Error (`Msg m) -> Error (`Msg m)
  in
  let print ppf = function
    | None -> Format.pp_print_string ppf "$VCHAN_BACKEND"
    | Some b -> Format.pp_print_string ppf (Vchan_rs_lwt_unix.Backend.to_string b)
  in
  Arg.conv ~docv:"BACKEND" (parse, print)

let timeout =
  let parse s =
    match float_of_string_opt s with
    | Some f when f >= 0. -> Ok (Some f)
    | _ -> Error (`Msg (Printf.sprintf "invalid timeout %S: expected seconds >= 0" s))
  in
  let print ppf = function
    | None -> Format.pp_print_string ppf "none"
    | Some f -> Format.pp_print_float ppf f
  in
  Arg.conv ~docv:"SECONDS" (parse, print)

let cmd =
  let listen =
    Arg.(value & flag & info [ "l"; "listen" ]
           ~doc:"Serve: wait for a client in domain $(i,DOMID) (default: \
                 connect to the server in domain $(i,DOMID)).")
  and no_stdin =
    Arg.(value & flag & info [ "d"; "no-stdin" ]
           ~doc:"Do not read standard input: only receive, until the peer \
                 closes.")
  and verbose =
    Arg.(value & flag & info [ "v"; "verbose" ]
           ~doc:"Report the connection, and at exit the bytes moved and the \
                 throughput, on standard error.")
  and buffer_size =
    Arg.(value & opt size 65536 & info [ "buffer-size" ] ~docv:"BYTES"
           ~doc:"Minimum size of each ring, for a server (1 .. 1048576; \
                 rings are powers of two from 1 KiB).")
  and backend =
    Arg.(value & opt backend None & info [ "backend" ] ~docv:"BACKEND"
           ~doc:"$(b,unix) (no hypervisor) or $(b,xen); default: \
                 \\$VCHAN_BACKEND, else unix.")
  and timeout =
    Arg.(value & opt timeout None & info [ "timeout" ] ~docv:"SECONDS"
           ~doc:"Client: give up if no server appears within $(docv) \
                 seconds (default: wait forever).")
  and domid =
    Arg.(required & pos 0 (some domid) None & info [] ~docv:"DOMID"
           ~doc:"The peer's domain id.")
  and port =
    Arg.(required & pos 1 (some port) None & info [] ~docv:"PORT"
           ~doc:"The vchan port name: one or more of [a-zA-Z0-9_-].")
  in
  let doc = "copy standard input and output over a Xen vchan" in
  let man =
    [
      `S Manpage.s_description;
      `P "$(tname) connects to the vchan server in domain $(i,DOMID) on \
          $(i,PORT) (or, with $(b,-l), serves client domain $(i,DOMID)), then \
          copies standard input to the vchan and the vchan to standard \
          output, like nc.";
      `P "It exits when standard input reaches its end and everything read \
          was sent (then it closes the vchan, and the peer reads all of it \
          before the end of its stream), or when the peer closed and \
          everything received was written. A vchan has no half-close: the \
          side that only receives must keep its standard input open, or use \
          $(b,-d).";
      `S Manpage.s_environment;
      `P "$(b,VCHAN_BACKEND): unix (default) or xen.";
      `P "$(b,VCHAN_DOMID): the domain id of this process (unix backend; \
          default 0).";
      `P "$(b,VCHAN_UNIX_DIR): the rendezvous directory (unix backend; \
          default \\$XDG_RUNTIME_DIR/vchan, else /tmp/vchan-\\$UID).";
      `P "A client or server still waiting after 10 s says on standard \
          error what it waits for: the domains, the port, the backend and \
          the rendezvous path.";
      `S Manpage.s_exit_status;
      `P "0 on success; 1 if the vchan failed (for instance the peer \
          vanished without closing the vchan, because its process died, or \
          it closed before all of standard input was sent, or no server \
          appeared in time); 124 on bad arguments.";
      `S Manpage.s_examples;
      `P "In domain 0, serve domain 1 on port foo and save what it sends:";
      `Pre "VCHAN_DOMID=0 vchan-cat -l -d 1 foo > copy";
      `P "In domain 1, send a file to domain 0:";
      `Pre "VCHAN_DOMID=1 vchan-cat 0 foo < file";
    ]
  in
  Cmd.v
    (Cmd.info "vchan-cat" ~version:Version.v ~doc ~man ~exits:[])
    Term.(
      const main $ listen $ no_stdin $ verbose $ buffer_size $ backend $ timeout
      $ domid $ port)

let () = exit (Cmd.eval' cmd)
