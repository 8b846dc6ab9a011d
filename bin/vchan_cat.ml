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

(* After standard input ended and the peer read all of it: with
   [quit_after = Some s], [`Stdin_eof] after [s] seconds (nc's -q; -N is
   -q 0); with [None], never: receive until the peer closes (nc's default). *)
let stdin_done ~quit_after =
  match quit_after with
  | None -> fst (Lwt.wait ())
  | Some s -> Lwt_unix.sleep s >|= fun () -> `Stdin_eof

(* stdin -> vchan. [sending] is true while bytes read from stdin are not all
   read by the peer yet; [lingering] once all of stdin is in the ring. A regular file, pipe or socket is read straight
   into the write ring (E.write_from_fd: no buffer, no copy); anything else
   (a terminal) through a buffer and Lwt's thread pool. *)
(* Is stdin at its end now? Only asked of a regular file, pipe or socket
   (never blocking: a pipe or socket is non-blocking, see [lwt_fd]). *)
let stdin_at_end () =
  match (Unix.fstat Unix.stdin).Unix.st_kind with
  | Unix.S_REG | Unix.S_FIFO | Unix.S_SOCK -> (
      try Unix.read Unix.stdin (Bytes.create 1) 0 1 = 0 with Unix.Unix_error _ -> false)
  | _ | (exception Unix.Unix_error _) -> false

let upstream t ~chunk ~quit_after ~sent ~sending ~lingering =
  let stdin = lwt_fd ~input:true Unix.stdin in
  let direct =
    match (Unix.fstat Unix.stdin).Unix.st_kind with
    | Unix.S_REG | Unix.S_FIFO | Unix.S_SOCK -> true
    | _ | (exception Unix.Unix_error _) -> false
  in
  let buf = lazy (Lwt_bytes.create chunk) in
  (* A read in Lwt's thread pool (a terminal, /dev/null) cannot be
     cancelled: what waits for it must not be attached to it, or a read
     still running when the transfer ends would keep the endpoint reachable
     at exit, where collecting it frees its memory and its grant files. *)
  let read buf =
    let p, u = Lwt.task () in
    Lwt.on_any
      (Lwt_bytes.read stdin buf 0 chunk)
      (fun n -> if Lwt.is_sleeping p then Lwt.wakeup_later u n)
      (fun e -> if Lwt.is_sleeping p then Lwt.wakeup_later_exn u e);
    p
  in
  let buffered () =
    Lwt.catch
      (fun () ->
        let buf = Lazy.force buf in
        read buf >|= fun n -> `Read (buf, n))
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
           (some peers drop what is unread once they see a close), still
           receiving meanwhile. *)
        sending := true;
        lingering := true;
        E.linger t >>= function
        | Ok () ->
            sending := false;
            stdin_done ~quit_after
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

(* vchan -> stdout, writing the zero-copy views of the ring. A reader of
   stdout that went away (EPIPE: SIGPIPE is ignored) ends it quietly, as
   SIGPIPE ends cat: [`Stdout_closed]. *)
let downstream t ~received =
  let stdout = lwt_fd ~input:false Unix.stdout in
  let rec write_all (v : Cstruct.t) off len =
    if len = 0 then Lwt.return `Written
    else
      Lwt.catch
        (fun () -> Lwt_bytes.write stdout v.buffer off len >|= fun n -> `Wrote n)
        (function
          | Unix.Unix_error (Unix.EPIPE, _, _) -> Lwt.return `Stdout_closed
          | Unix.Unix_error (e, _, _) -> unix_error "stdout" e
          | e -> Lwt.fail e)
      >>= function
      | `Wrote n -> write_all v (off + n) (len - n)
      | `Stdout_closed -> Lwt.return `Stdout_closed
  in
  let rec loop () =
    E.read t >>= function
    | Ok `Eof -> Lwt.return `Peer_eof
    | Ok (`Data v) -> (
        write_all v v.Cstruct.off v.Cstruct.len >>= function
        | `Written ->
            received := !received + v.Cstruct.len;
            loop ()
        | `Stdout_closed -> Lwt.return `Stdout_closed)
    | Error e -> failf "vchan read: %s" (Vchan_rs.Error.to_string e)
  in
  loop ()

(* We close at the end of our standard input (-N, -q) while the peer has
   not closed: say so when it was still sending (its bytes wait unread), or
   when our input was empty (a receiver whose stdin is /dev/null, as every
   `cmd &` of a script has), since what the peer still had to send is
   lost. *)
let warn_cut t ~sent =
  let unread = E.data_ready t in
  if E.state t = E.Connected && (unread > 0 || sent = 0) then
    Printf.eprintf
      "vchan-cat: warning: closing the vchan at the end of standard input \
       (-N or -q) while the peer is still %s: what it still sends is lost \
       (without -N and -q, vchan-cat receives until the peer closes)\n%!"
      (if unread > 0 then Printf.sprintf "sending (%d bytes unread)" unread
       else "connected, and our standard input was empty")

(* What a wait is for, for messages: the backend, the domains, the port and
   the rendezvous (xenstore's path; under the unix backend, the directory
   that stands for xenstore, as the library resolves it), with a hint at
   the usual mistakes. *)
let describe_wait ~listen ~backend domid port =
  let module B = Vchan_rs_lwt_unix.Backend in
  let backend =
    match backend with
    | Some b -> b
    | None -> ( match B.default () with Ok b -> b | Error _ -> Unix)
  in
  let where =
    match backend with
    | B.Unix -> Printf.sprintf " in %s/store" (B.unix_dir ())
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
    (B.to_string backend) server client (Vchan_rs.Port.to_string port) where

(* Tell the user once, after [after] seconds, what we are still waiting for. *)
let still_waiting ~after what =
  let waiting =
    Lwt_unix.sleep after >|= fun () ->
    Printf.eprintf "vchan-cat: still waiting (%.0f s) for %s\n%!" after what
  in
  fun () -> Lwt.cancel waiting

(* The connected endpoint; [opened] receives it as soon as it exists (a
   server's, before its client came), to be closed whatever happens. *)
let connect ~listen ~backend ~timeout ~buffer_size ~verbose ~opened domid port =
  let say fmt =
    Printf.ksprintf (fun s -> if verbose then prerr_endline ("vchan-cat: " ^ s)) fmt
  in
  let what = describe_wait ~listen ~backend domid port in
  let timed_out s = failf "timed out after %g s waiting for %s" s what in
  let stop = still_waiting ~after:10. what in
  (if listen then begin
     let t =
       E.listen ?backend ~domid ~port ~read_size:buffer_size
         ~write_size:buffer_size ()
     in
     opened t;
     say "listening for domain %d on port %s" domid (Vchan_rs.Port.to_string port);
     match timeout with
     | None -> E.accept t >|= fun () -> t
     | Some s ->
         Lwt.catch
           (fun () -> Lwt_unix.with_timeout s (fun () -> E.accept t) >|= fun () -> t)
           (function Lwt_unix.Timeout -> timed_out s | e -> Lwt.fail e)
   end
   else
     Lwt.catch
       (fun () -> E.connect ?backend ?timeout ~domid ~port ())
       (function
         | Vchan_rs.Error.Vchan `Timeout ->
             timed_out (Option.value timeout ~default:0.)
         | e -> Lwt.fail e)
     >|= fun t ->
     opened t;
     t)
  >|= fun t ->
  stop ();
  say "connected to domain %d on port %s" domid (Vchan_rs.Port.to_string port);
  t

(* SIGINT and SIGTERM: [`Exit 130] and [`Exit 143] (128 + the signal's
   number, as a shell reports a process the signal killed). *)
let signalled () =
  let p, u = Lwt.wait () in
  List.iter
    (fun (signal, status) ->
      let on _ = if Lwt.is_sleeping p then Lwt.wakeup_later u (`Exit status) in
      ignore (Lwt_unix.on_signal signal on : Lwt_unix.signal_handler_id))
    [ (Sys.sigint, 130); (Sys.sigterm, 143) ];
  p

let main listen no_stdin quit_after verbose buffer_size backend timeout domid port =
  Sys.set_signal Sys.sigpipe Sys.Signal_ignore;
  let sent = ref 0 and received = ref 0 and sending = ref false in
  let lingering = ref false in
  let started = ref (Unix.gettimeofday ()) in
  let transfer t =
    started := Unix.gettimeofday ();
    let up =
      if no_stdin then stdin_done ~quit_after
      else
        upstream t ~chunk:(max buffer_size (1 lsl 20)) ~quit_after ~sent ~sending ~lingering
    in
    Lwt.pick [ up; downstream t ~received ] >>= function
    | (`Peer_eof | `Peer_gone) when E.peer_vanished t ->
        failf "the peer vanished (its process died) without closing the vchan"
    | `Stdout_closed -> Lwt.return (`Exit 141)
    | `Stdin_eof ->
        warn_cut t ~sent:!sent;
        Lwt.return (`Exit 0)
    | `Peer_eof when not !sending -> Lwt.return (`Exit 0)
    | `Peer_eof -> (
        (* The peer's last reads and its close may come with one wake-up,
           which can reach our end of stream before our sending side saw
           them: everything we wrote was read ([linger] says so), and
           stdin is all in the ring, or at its end now. *)
        E.linger t >>= function
        | Ok () when !lingering || stdin_at_end () -> Lwt.return (`Exit 0)
        | _ -> failf "the peer closed the vchan before all of stdin was sent")
    | `Peer_gone ->
        failf "the peer closed the vchan before all of stdin was sent"
  in
  (* Whatever ends the job (its end, a failure, a signal, which cancels what
     it waits for), the vchan is closed: the library's close, which removes
     our rendezvous files. *)
  let endpoint = ref None in
  let job () =
    Lwt.finalize
      (fun () ->
        Lwt.pick
          [
            connect ~listen ~backend ~timeout ~buffer_size ~verbose
              ~opened:(fun t -> endpoint := Some t)
              domid port
            >>= transfer;
            signalled ();
          ])
      (fun () -> match !endpoint with Some t -> E.close t | None -> Lwt.return_unit)
  in
  let outcome =
    try Ok (Lwt_main.run (job ())) with
    | Failed m -> Error m
    | Vchan_rs.Error.Vchan e -> Error (Vchan_rs.Error.to_string e)
    | Unix.Unix_error (e, f, _) -> Error (f ^ ": " ^ Unix.error_message e)
  in
  match outcome with
  | Ok (`Exit 0) ->
      if verbose then begin
        let dt = Unix.gettimeofday () -. !started in
        let moved = !sent + !received in
        Printf.eprintf
          "vchan-cat: sent %d bytes, received %d bytes in %.3f s (%.1f MB/s)\n%!"
          !sent !received dt
          (if dt > 0. then float moved /. dt /. 1e6 else 0.)
      end;
      0
  | Ok (`Exit status) -> status
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

let seconds =
  let parse s =
    match float_of_string_opt s with
    | Some f when Float.is_finite f -> Ok f
    | _ -> Error (`Msg (Printf.sprintf "invalid duration %S: expected seconds" s))
  in
  Arg.conv ~docv:"SECONDS" (parse, Format.pp_print_float)

(* What the options ask for at the end of standard input: [Some s], close
   [s] seconds after it; [None], keep receiving until the peer closes. *)
let quit_after close_at_eof quit =
  match (close_at_eof, quit) with
  | true, Some _ -> Error "-N and -q are exclusive (-N is -q 0)"
  | true, None -> Ok (Some 0.)
  | false, Some s when s >= 0. -> Ok (Some s)
  | false, (Some _ | None) -> Ok None

let cmd =
  let listen =
    Arg.(value & flag & info [ "l"; "listen" ]
           ~doc:"Serve: wait for a client in domain $(i,DOMID) (default: \
                 connect to the server in domain $(i,DOMID)).")
  and no_stdin =
    Arg.(value & flag & info [ "d"; "no-stdin" ]
           ~doc:"Do not read standard input, as if it were empty: send \
                 nothing.")
  and close_at_eof =
    Arg.(value & flag & info [ "N"; "close-at-eof" ]
           ~doc:"Close the vchan (and exit) once standard input ended and \
                 the peer read all of it, as $(b,-q 0): what a sender \
                 whose peer waits for it to close needs.")
  and quit =
    Arg.(value & opt (some seconds) None & info [ "q"; "quit-after" ]
           ~docv:"SECONDS"
           ~doc:"Once standard input ended and the peer read all of it, \
                 keep receiving for $(docv) seconds, then close the vchan \
                 (and exit); a negative $(docv) (written $(b,-q-1) or \
                 $(b,--quit-after=-1)) means until the peer closes, the \
                 default.")
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
           ~doc:"Give up if the peer does not come within $(docv) seconds: \
                 a client waiting for its server, or with $(b,-l) a server \
                 waiting for its client (default: wait forever).")
  and domid =
    Arg.(required & pos 0 (some domid) None & info [] ~docv:"DOMID"
           ~doc:"The peer's domain id, in decimal.")
  and port =
    Arg.(required & pos 1 (some port) None & info [] ~docv:"PORT"
           ~doc:"The vchan port name: one or more of [a-zA-Z0-9_-].")
  in
  let run listen no_stdin close_at_eof quit verbose buffer_size backend
      timeout domid port =
    match quit_after close_at_eof quit with
    | Error m -> `Error (true, m)
    | Ok quit_after ->
        `Ok
          (main listen no_stdin quit_after verbose buffer_size backend timeout
             domid port)
  in
  let doc = "copy standard input and output over a Xen vchan" in
  let man =
    [
      `S Manpage.s_description;
      `P "$(tname) connects to the vchan server in domain $(i,DOMID) on \
          $(i,PORT) (or, with $(b,-l), serves client domain $(i,DOMID)), then \
          copies standard input to the vchan and the vchan to standard \
          output, like nc.";
      `P "A vchan has no half-close: closing it ends both directions. So, \
          as Debian's nc does by default, $(tname) does not close when its \
          standard input ends: it waits until the peer has read all of it, \
          keeps receiving, and exits when the peer closes (having written \
          everything received). A request and its reply work as with nc \
          ($(b,echo req | vchan-cat 0 svc)), and a receiver whose standard \
          input is empty (/dev/null, as for every $(b,cmd &) of a script) \
          still receives everything.";
      `P "A side that sends a stream to a peer that waits for the end of \
          it must close the vchan itself: $(b,-N) closes once standard \
          input ended and the peer read all of it; $(b,-q) $(i,SECONDS) \
          keeps receiving that long first. Closing that way while the peer \
          is still sending (bytes of it unread), or with an empty standard \
          input while the peer is still connected, loses what the peer \
          still sends: $(tname) says so on standard error.";
      `P "SIGINT and SIGTERM close the vchan (the peer sees the close, and \
          the rendezvous files are removed), then $(tname) exits.";
      `S Manpage.s_common_options;
      `P "$(b,-h) is $(b,--help).";
      `S Manpage.s_environment;
      `P "$(b,VCHAN_BACKEND): unix (default) or xen.";
      `P "$(b,VCHAN_DOMID): the domain id of this process, in decimal (unix \
          backend; default 0).";
      `P "$(b,VCHAN_UNIX_DIR): the rendezvous directory (unix backend; \
          default \\$XDG_RUNTIME_DIR/vchan, else \\$TMPDIR/vchan-\\$UID, \
          /tmp/vchan-\\$UID when TMPDIR is unset).";
      `P "A client or server still waiting after 10 s says on standard \
          error what it waits for: the domains, the port, the backend and \
          the rendezvous path.";
      `S Manpage.s_exit_status;
      `P "0 on success (the peer closed, or $(b,-N)/$(b,-q) closed after \
          standard input ended);";
      `P "1 if the vchan failed (for instance the peer vanished without \
          closing the vchan, because its process died, or it closed before \
          all of standard input was sent, or the peer did not come within \
          $(b,--timeout));";
      `P "2 on bad arguments;";
      `P "130 and 143 after SIGINT and SIGTERM;";
      `P "141 when standard output was closed by its reader (EPIPE), as a \
          shell reports cat killed by SIGPIPE; $(tname) closes the vchan \
          and exits quietly.";
      `S Manpage.s_examples;
      `P "In domain 0, serve domain 1 on port foo and save what it sends:";
      `Pre "VCHAN_DOMID=0 vchan-cat -l 1 foo > copy";
      `P "In domain 1, send a file to domain 0, closing at its end:";
      `Pre "VCHAN_DOMID=1 vchan-cat -N 0 foo < file";
    ]
  in
  Cmd.v
    (Cmd.info "vchan-cat" ~version:Version.v ~doc ~man ~exits:[])
    Term.(
      ret
        (const run $ listen $ no_stdin $ close_at_eof $ quit $ verbose
       $ buffer_size $ backend $ timeout $ domid $ port))

(* -h is --help, which cmdliner alone knows. Before "--", an argument "-h"
   can only be an option: cmdliner takes no option value that starts with
   '-', and a port named -h goes after "--". *)
let argv =
  let rec go = function
    | "--" :: _ as rest -> rest
    | "-h" :: rest -> "--help=auto" :: go rest
    | a :: rest -> a :: go rest
    | [] -> []
  in
  match Array.to_list Sys.argv with
  | exe :: args -> Array.of_list (exe :: go args)
  | [] -> Sys.argv

let () =
  (* Help as plain text when standard output is not a terminal: cmdliner
     pages it through groff (overstrike) whenever TERM is set and is not
     "dumb", and vchan-cat runs nothing else that reads TERM. *)
  if not (Unix.isatty Unix.stdout) then Unix.putenv "TERM" "dumb";
  exit
    (match Cmd.eval_value ~argv cmd with
    | Ok (`Ok status) -> status
    | Ok (`Help | `Version) -> 0
    | Error (`Parse | `Term) -> 2
    | Error `Exn -> Cmd.Exit.internal_error)
