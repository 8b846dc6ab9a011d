(* The OCaml roles of vchan-bench over [Impl]'s library (vchan-rs's here,
   ocaml-vchan's with bench/ocaml-vchan/impl.ml), with the arguments and
   output of bench/src/role.rs:
     vbench.exe server|client|inmem RING stream|ping|lwtio COUNT SIZE
   lwtio runs through the Lwt_io channels of open_server/open_client; inmem
   both ends of an In_memory here. *)

open Lwt.Infix
module M = Impl.M

let pattern_len = 65521
let sample = 4096
let fail fmt = Printf.ksprintf failwith fmt

(* Pattern.new 65521 extra of rust/test-support. *)
let pattern extra =
  let b = Bytes.create (pattern_len + extra) and x = ref 0x9E3779B97F4A7C15L in
  for i = 0 to pattern_len + extra - 1 do
    let open Int64 in
    x := logxor !x (shift_left !x 13);
    x := logxor !x (shift_right_logical !x 7);
    x := logxor !x (shift_left !x 17);
    let c = Char.chr (to_int (shift_right_logical !x 56)) in
    Bytes.set b i (if i < pattern_len then c else Bytes.get b (i - pattern_len))
  done;
  b

(* Checks the bytes at multiples of [sample] from [s] and the last of
   [get], which holds stream bytes [pos, pos + len); the number checked.
   No closure: the readers' loops allocate nothing of their own. *)
let check pat get at pos =
  if get (at - pos) <> Bytes.get pat (at mod pattern_len) then
    fail "data mismatch at stream offset %d" at

let rec verify pat get pos len s n =
  if s >= pos + len then (check pat get (pos + len - 1) pos; n)
  else (check pat get s pos; verify pat get pos len (s + sample) (n + 1))

(* BENCH_DELAY_US: both sides of a ping-pong block before each message. *)
let delay =
  Option.fold ~none:0. ~some:(fun v -> float_of_string v *. 1e-6) (Sys.getenv_opt "BENCH_DELAY_US")
let port = Impl.port "bench"
let ok pp = function Ok x -> x | Error e -> fail "%s" (Format.asprintf "%a" pp e)

(* Reads [total] bytes with [next], which gives the length of the next
   run, the bytes [get] returns; prints the stream reader's result. *)
let stream_read pat total get next =
  let rec go pos start samples t0 =
    if pos >= total then
      let secs = Unix.gettimeofday () -. t0 in
      Lwt.return (Printf.printf "bytes=%d\nsecs=%.9f\nsamples=%d\n%!" (pos - start) secs samples)
    else
      next (total - pos) >>= fun len ->
      let samples = verify pat get pos len ((pos + sample - 1) / sample * sample) (samples + 1) in
      if pos = 0 then go len len samples (Unix.gettimeofday ()) else go (pos + len) start samples t0
  in
  go 0 0 0 0.

(* Writes [total] bytes of the pattern in runs of [size]: [write off n]. *)
let stream_write total size write =
  let rec go pos =
    let n = min size (total - pos) in
    if n <= 0 then Lwt.return_unit else write (pos mod pattern_len) n >>= fun () -> go (pos + n)
  in
  go 0

(* The roles over one kind of endpoint: M or an In_memory. *)
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

  (* The next view, copied out into [buf] (at least the ring's size). *)
  let next t buf =
    E.read t >|= function
    | Ok (`Data v) ->
        Cstruct.blit v 0 buf 0 (Cstruct.length v);
        Cstruct.length v
    | Ok `Eof -> fail "early end of stream"
    | Error e -> fail "%s" (Format.asprintf "%a" E.pp_error e)

  (* Reads exactly [Cstruct.length buf] bytes (no view holds more: nothing
     is sent before this message is answered). *)
  let read_n t buf =
    let rec go off =
      if off = Cstruct.length buf then Lwt.return_unit
      else next t (if off = 0 then buf else Cstruct.shift buf off) >>= fun n -> go (off + n)
    in
    go 0

  let stream t pat count size buf = function
    | true -> stream_read pat count (Cstruct.get_char buf) (fun _ -> next t buf)
    | false ->
        let src = Cstruct.of_bytes pat in
        stream_write count size (fun off n -> write t (Cstruct.sub src off n))

  (* Echoes [count] messages of [size] bytes. *)
  let pong t count size =
    let buf = Cstruct.create size in
    let rec loop i =
      if i = count then Lwt.return_unit
      else
        read_n t buf >>= fun () ->
        if delay > 0. then Unix.sleepf delay;
        write t buf >>= fun () -> loop (i + 1)
    in
    loop 0

  (* [count] round trips of [size] bytes, each echo checked. gettimeofday
     is coarser than a round trip: groups of 100 are timed, and the median
     group's mean printed. *)
  let ping t pat count size =
    let group = min 100 count and back = Cstruct.create size in
    let rec loop i t0 acc =
      if i = count then Lwt.return acc
      else begin
        let out = Cstruct.of_bytes ~off:(i mod pattern_len) ~len:size pat in
        if delay > 0. then Unix.sleepf delay;
        write t out >>= fun () ->
        read_n t back >>= fun () ->
        if not (Cstruct.equal back out) then fail "echo differs in round %d" i;
        if (i + 1) mod group <> 0 then loop (i + 1) t0 acc
        else
          let now = Unix.gettimeofday () in
          loop (i + 1) now (((now -. t0) /. float group) :: acc)
      end
    in
    loop 0 (Unix.gettimeofday ()) [] >|= fun rtts ->
    let a = Array.of_list rtts in
    Array.sort compare a;
    Printf.printf "median_ns=%.0f\n%!" (a.(Array.length a / 2) *. 1e9)
end

module R = Roles (M)
module IM = Impl.In_memory
module IR = Roles (IM)

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
      stream_read pat count (Bytes.get buf) (fun left ->
          Lwt_io.read_into ic buf 0 (min left size) >|= fun n ->
          if n = 0 then fail "early end-of-stream" else n)
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

(* Both ends of an In_memory in this process and one Lwt scheduler. *)
let in_memory ring mode count size =
  let pat = pattern size and port = Impl.port "bench-inmem" in
  let s = IM.server ~domid:1 ~port ~read_size:ring ~write_size:ring () in
  IM.client ~domid:0 ~port () >>= fun c ->
  s >>= fun s ->
  (match mode with
  | "stream" ->
      let buf = Cstruct.create ring in
      Lwt.join [ IR.stream c pat count size buf false; IR.stream s pat count size buf true ]
  | "ping" -> Lwt.join [ IR.pong s count size; IR.ping c pat count size ]
  | m -> fail "unknown in-memory mode %s" m)
  >>= fun () -> IM.close c >>= fun () -> IM.close s >|= IM.assert_cleaned_up

let () =
  Impl.install_engine (Sys.getenv_opt "BENCH_LWT_ENGINE");
  let int i = try int_of_string Sys.argv.(i) with _ -> fail "bad argument %d" i in
  let die m =
    prerr_endline ("vbench: " ^ m);
    exit 1
  in
  match Array.to_list Sys.argv with
  | [ _; (("server" | "client" | "inmem") as role); _; mode; _; _ ] -> (
      let run = match role with "server" -> server | "client" -> client | _ -> in_memory in
      try Impl.run (run (int 2) mode (int 4) (int 5)) with
      | Failure m -> die m
      | e -> ( match Impl.error_message e with Some m -> die m | None -> raise e))
  | _ ->
      prerr_endline "usage: vbench.exe server|client|inmem RING stream|ping|lwtio COUNT SIZE";
      exit 2
