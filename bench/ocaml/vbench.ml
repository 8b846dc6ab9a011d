(* The OCaml side of `vchan-bench` (make bench): the library of [Impl]
   (vchan-rs, impl.ml here; ocaml-vchan's in the ocaml-vchan column, built by
   scripts/ocaml-vchan.sh with bench/ocaml-vchan/impl.ml) with the arguments
   and output of the Rust roles (bench/src/role.rs says what the modes do):

     vbench.exe server|client|inmem RING stream|ping|lwtio COUNT SIZE

   VCHAN_UNIX_DIR and VCHAN_DOMID root it (server 0, client 1). stream and
   ping use M.write and M.read (each view copied out before it is checked,
   as the Rust reader copies); lwtio the same stream through
   open_server/open_client's Lwt_io channels; inmem: [in_memory]. The ping
   round trip is timed over groups of 100 (the clock being coarse). Every
   role runs under Vchan_rs_lwt_unix.Engine unless BENCH_LWT_ENGINE=default
   keeps Lwt's default engine (libev). The pattern and its check are those
   of the Rust roles (Pattern::new 65521 of rust/test-support). *)

open Lwt.Infix
module M = Impl.M

let pattern_len = 65521
let sample = 4096

(* The pattern, followed by its first [extra] bytes again. *)
let pattern extra =
  let b = Bytes.create (pattern_len + extra) in
  let x = ref 0x9E3779B97F4A7C15L in
  for i = 0 to pattern_len - 1 do
    let open Int64 in
    x := logxor !x (shift_left !x 13);
    x := logxor !x (shift_right_logical !x 7);
    x := logxor !x (shift_left !x 17);
    Bytes.set b i (Char.chr (to_int (shift_right_logical !x 56)))
  done;
  for i = pattern_len to pattern_len + extra - 1 do
    Bytes.set b i (Bytes.get b (i mod pattern_len))
  done;
  b

let fail fmt = Printf.ksprintf failwith fmt

(* Check the samples of [get], which holds stream bytes [pos, pos + len);
   the number of bytes checked. *)
let verify pat get pos len =
  let expect at = Bytes.get pat (at mod pattern_len) in
  let s = ref ((pos + sample - 1) / sample * sample) and checked = ref 1 in
  while !s < pos + len do
    if get (!s - pos) <> expect !s then fail "data mismatch at stream offset %d" !s;
    s := !s + sample;
    incr checked
  done;
  if get (len - 1) <> expect (pos + len - 1) then
    fail "data mismatch at stream offset %d" (pos + len - 1);
  !checked

(* How often this process slept: voluntary context switches. *)
let sleeps () =
  let ic = open_in "/proc/self/status" in
  let rec find () =
    match input_line ic with
    | exception End_of_file -> 0
    | l -> (
        match Scanf.sscanf l "voluntary_ctxt_switches: %d" Fun.id with
        | n -> n
        | exception _ -> find ())
  in
  let n = find () in
  close_in ic;
  n

(* BENCH_DELAY_US: how long both sides of a ping-pong sleep (blocking the
   process, as the other roles do) before each message they send. *)
let delay =
  match Sys.getenv_opt "BENCH_DELAY_US" with
  | Some v -> ( match float_of_string_opt v with Some us -> us *. 1e-6 | None -> 0.)
  | None -> 0.

(* Whether to (a plain flag: the loops test it inline, at no cost to the
   In_memory rows). *)
let paced = delay > 0.

let port = Impl.port "bench"
let ok pp = function Ok x -> x | Error e -> fail "%s" (Format.asprintf "%a" pp e)

(* Reads [total] bytes with [next], which returns the next run as (get, len);
   prints the stream reader's result lines. *)
let stream_read pat total next =
  let rec go pos start samples t0 s0 =
    if pos >= total then begin
      let secs = Unix.gettimeofday () -. t0 in
      Printf.printf "bytes=%d\nsecs=%.9f\nsamples=%d\nsleeps=%d\n%!" (pos - start) secs
        samples (sleeps () - s0);
      Lwt.return_unit
    end
    else
      next (total - pos) >>= fun (get, len) ->
      let samples = samples + verify pat get pos len in
      if pos = 0 then go len len samples (Unix.gettimeofday ()) (sleeps ())
      else go (pos + len) start samples t0 s0
  in
  go 0 0 0 0. 0

(* Writes [total] bytes of the pattern in runs of up to [size] bytes:
   [write off n] writes the [n] bytes of the pattern at [off]. *)
let stream_write total size write =
  let rec go pos =
    if pos >= total then Lwt.return_unit
    else
      let n = min size (total - pos) in
      write (pos mod pattern_len) n >>= fun () -> go (pos + n)
  in
  go 0

(* The roles over one kind of endpoint: vchan-rs's or ocaml-vchan's M, or
   an In_memory (the part of their signature the roles use). *)
module Roles (E : sig
  type t
  type error
  type write_error

  val pp_error : Format.formatter -> error -> unit
  val pp_write_error : Format.formatter -> write_error -> unit
  val read : t -> ([ `Data of Cstruct.t | `Eof ], error) result Lwt.t
  val write : t -> Cstruct.t -> (unit, write_error) result Lwt.t
end) =
struct
  let write t b = E.write t b >|= ok E.pp_write_error

  let data = function
    | Ok (`Data v) -> v
    | Ok `Eof -> fail "early end of stream"
    | Error e -> fail "%s" (Format.asprintf "%a" E.pp_error e)

  (* Read exactly the rest of [buf] from [off] on. Bytes of a view past its
     end would belong to the next message: none is sent before this one is
     answered. *)
  let rec read_n t buf off =
    if off = Cstruct.length buf then Lwt.return_unit
    else
      E.read t >>= fun r ->
      let v = data r in
      let n = min (Cstruct.length v) (Cstruct.length buf - off) in
      Cstruct.blit v 0 buf off n;
      read_n t buf (off + n)

  (* The next view, copied out into [buf] (at least the ring's size) before
     it is checked, as the Rust reader copies into its buffer: a reader that
     keeps its data pays that copy. *)
  let next_copied t buf =
    E.read t >|= fun r ->
    let v = data r in
    let n = Cstruct.length v in
    Cstruct.blit v 0 buf 0 n;
    ((fun i -> Cstruct.get_char buf i), n)

  let stream t pat count size buf = function
    | true -> stream_read pat count (fun _ -> next_copied t buf)
    | false ->
        let src = Cstruct.of_bytes pat in
        stream_write count size (fun off n -> write t (Cstruct.sub src off n))

  (* Echoes [count] messages of [size] bytes. *)
  let pong t count size =
    let buf = Cstruct.create size in
    let rec loop i =
      if i = count then Lwt.return_unit
      else read_n t buf 0 >>= fun () ->
        if paced then Unix.sleepf delay;
        write t buf >>= fun () -> loop (i + 1)
    in
    loop 0

  (* [count] round trips of [size] bytes, each echo checked; prints the
     pinger's result lines. Unix.gettimeofday ticks in microseconds, coarser
     than a round trip: groups of [group] round trips are timed, and the
     median group's mean reported. *)
  let ping t pat count size =
    let group = min 100 count in
    let back = Cstruct.create size and s0 = sleeps () in
    let rec loop i t0 acc =
      if i = count then Lwt.return acc
      else begin
        let out = Cstruct.of_bytes ~off:(i mod pattern_len) ~len:size pat in
        if paced then Unix.sleepf delay;
        write t out >>= fun () ->
        read_n t back 0 >>= fun () ->
        if not (Cstruct.equal back out) then fail "echo differs in round %d" i;
        if (i + 1) mod group = 0 then
          let now = Unix.gettimeofday () in
          loop (i + 1) now (((now -. t0) /. float group) :: acc)
        else loop (i + 1) t0 acc
      end
    in
    loop 0 (Unix.gettimeofday ()) [] >|= fun rtts ->
    let a = Array.of_list rtts in
    Array.sort compare a;
    Printf.printf "median_ns=%.0f\nsleeps=%d\n%!" (a.(Array.length a / 2) *. 1e9) (sleeps () - s0)
end

module R = Roles (M)
module IM = Impl.In_memory
module IR = Roles (IM)

(* server and client: two processes, M over the Unix plumbing (stream,
   ping) or the Lwt_io channels of open_server/open_client (lwtio). *)
let server ring mode count size =
  let pat = pattern size in
  match mode with
  | "stream" | "ping" ->
      (* M.server listens, then waits: announce first. *)
      let t = M.server ~domid:1 ~port ~read_size:ring ~write_size:ring () in
      print_endline "listening";
      t >>= fun t ->
      (if mode = "stream" then R.stream t pat count size (Cstruct.create ring) true
       else R.pong t count size)
      >>= fun () -> M.close t
  | "lwtio" ->
      let c = Impl.open_server ~domid:1 ~port ~buffer_size:ring () in
      print_endline "listening";
      c >>= fun (ic, oc) ->
      let buf = Bytes.create size in
      stream_read pat count (fun left ->
          Lwt_io.read_into ic buf 0 (min left size) >|= fun n ->
          if n = 0 then fail "early end-of-stream";
          ((fun i -> Bytes.get buf i), n))
      >>= fun () -> Lwt_io.close oc
  | m -> fail "unknown server mode %s" m

let client _ring mode count size =
  let pat = pattern size in
  match mode with
  | "stream" | "ping" ->
      M.client ~domid:0 ~port () >>= fun t ->
      (if mode = "stream" then R.stream t pat count size Cstruct.empty false
       else R.ping t pat count size)
      >>= fun () -> M.close t
  | "lwtio" ->
      Impl.open_client ~domid:0 ~port () >>= fun (_, oc) ->
      stream_write count size (Lwt_io.write_from_exactly oc pat) >>= fun () -> Lwt_io.close oc
  | m -> fail "unknown client mode %s" m

(* inmem: [Impl]'s In_memory, both ends in this process and one Lwt
   scheduler (no second core, no system call), stream and ping as the two
   processes run them. *)
let in_memory ring mode count size =
  let pat = pattern size in
  let port = Impl.port "bench-inmem" in
  let s = IM.server ~domid:1 ~port ~read_size:ring ~write_size:ring () in
  IM.client ~domid:0 ~port () >>= fun c ->
  s >>= fun s ->
  (match mode with
  | "stream" ->
      let buf = Cstruct.create ring in
      Lwt.join [ IR.stream c pat count size buf false; IR.stream s pat count size buf true ]
  | "ping" -> Lwt.both (IR.pong s count size) (IR.ping c pat count size) >|= fun ((), ()) -> ()
  | m -> fail "unknown in-memory mode %s" m)
  >>= fun () ->
  IM.close c >>= fun () ->
  IM.close s >|= fun () -> IM.assert_cleaned_up ()

let () = Impl.install_engine (Sys.getenv_opt "BENCH_LWT_ENGINE")

let () =
  let int i = try int_of_string Sys.argv.(i) with _ -> fail "bad argument %d" i in
  let main =
    match Array.to_list Sys.argv with
    | [ _; ("server" | "client" | "inmem" as role); _; mode; _; _ ] ->
        let run = match role with "server" -> server | "client" -> client | _ -> in_memory in
        run (int 2) mode (int 4) (int 5)
    | _ ->
        prerr_endline "usage: vbench.exe server|client|inmem RING stream|ping|lwtio COUNT SIZE";
        exit 2
  in
  try Impl.run main with
  | Failure m ->
      prerr_endline ("vbench: " ^ m);
      exit 1
  | e -> (
      match Impl.error_message e with
      | Some m ->
          prerr_endline ("vbench: " ^ m);
          exit 1
      | None -> raise e)
