(* The functor's cases over In_memory: see functor_cases.mli. *)

type case = { id : string; doc : string; run : unit -> unit }

open Lwt.Infix
module V = Vchan_rs.In_memory

let fail fmt = Printf.ksprintf failwith fmt
let port s = Result.get_ok (Vchan_rs.Port.of_string s)

let ok what = function
  | Ok x -> x
  | Error e -> fail "%s: %s" what (Vchan_rs.Error.to_string e)

(* A connected pair: (server, client). *)
let pair ?read_size ?write_size name =
  let port = port name in
  let server = V.server ~domid:1 ~port ?read_size ?write_size () in
  V.client ~domid:0 ~port () >>= fun client ->
  server >|= fun server -> (server, client)

let close_both (s, c) =
  V.close c >>= fun () ->
  V.close s >|= fun () -> V.assert_cleaned_up ()

(* A scheduler for one process with no I/O: run paused threads until [f]'s
   promise resolves; nothing left to run means a deadlock. *)
let run f =
  let p = f () in
  let rec loop () =
    match Lwt.state p with
    | Lwt.Return x -> x
    | Lwt.Fail e -> raise e
    | Lwt.Sleep ->
        if Lwt.paused_count () = 0 then fail "deadlock: nothing left to run";
        Lwt.wakeup_paused ();
        loop ()
  in
  loop ()

(* Read exactly [n] bytes (copied out of the views). *)
let read_exactly t n =
  let b = Bytes.create n in
  let rec go got =
    if got = n then Lwt.return b
    else
      V.read t >>= function
      | Ok (`Data v) ->
          let k = min (Cstruct.length v) (n - got) in
          if k < Cstruct.length v then fail "read more than asked: %d" (Cstruct.length v);
          Cstruct.blit_to_bytes v 0 b got k;
          go (got + k)
      | Ok `Eof -> fail "end of stream after %d of %d bytes" got n
      | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)
  in
  go 0

let rec drain_to_eof t f =
  V.read t >>= function
  | Ok `Eof -> Lwt.return_unit
  | Ok (`Data v) -> f v >>= fun () -> drain_to_eof t f
  | Error e -> fail "read: %s" (Vchan_rs.Error.to_string e)

(* The server echoes every view, transformed by [f], until the client
   closes. *)
let echo_case name f () =
  run @@ fun () ->
  pair name >>= fun (s, c) ->
  let server =
    drain_to_eof s (fun v -> V.write s (f v) >|= ok "echo write") >>= fun () -> V.close s
  in
  let messages = [ "hello"; "vchan"; String.make 3000 'x'; "Mirage unikernel" ] in
  Lwt_list.iter_s
    (fun m ->
      V.write c (Cstruct.of_string m) >|= ok "write" >>= fun () ->
      read_exactly c (String.length m) >|= fun got ->
      let want = Cstruct.to_string (f (Cstruct.of_string m)) in
      if Bytes.to_string got <> want then fail "echo of %S: got %S" m (Bytes.to_string got))
    messages
  >>= fun () ->
  V.close c >>= fun () ->
  server >|= fun () -> V.assert_cleaned_up ()

let capitalise v = Cstruct.of_string (String.uppercase_ascii (Cstruct.to_string v))

(* [size] bytes each way at once, both ends writing and reading
   concurrently, with MD5s of what arrived. *)
let both_ways ~size ~ring name =
  pair ~read_size:ring ~write_size:ring name >>= fun (s, c) ->
  let a = Pseudo_random.bytes ~seed:11L size in
  let b = Pseudo_random.bytes ~seed:12L size in
  let send t data =
    let rec go off =
      if off >= size then Lwt.return_unit
      else
        let n = min 65536 (size - off) in
        V.write t (Cstruct.of_bytes ~off ~len:n data) >|= ok "write" >>= fun () -> go (off + n)
    in
    go 0
  in
  Lwt.both
    (Lwt.both (send c a) (read_exactly s size))
    (Lwt.both (send s b) (read_exactly c size))
  >>= fun (((), at_server), ((), at_client)) ->
  if Digest.bytes at_server <> Digest.bytes a then fail "%s: client to server differs" name;
  if Digest.bytes at_client <> Digest.bytes b then fail "%s: server to client differs" name;
  close_both (s, c)

let big_both_ways () = run @@ fun () -> both_ways ~size:(64 * 1024 * 1024) ~ring:65536 "big"

(* Every ring size from 1 KiB to 1 MiB on each side (the orders Xen's
   server picks for them), three rings' worth and a bit each way. *)
let every_order () =
  run @@ fun () ->
  let sizes = List.init 11 (fun i -> 1 lsl (10 + i)) in
  Lwt_list.iter_s
    (fun r ->
      Lwt_list.iter_s
        (fun w ->
          let name = Printf.sprintf "order-%d-%d" r w in
          pair ~read_size:r ~write_size:w name >>= fun (s, c) ->
          let up = Pseudo_random.bytes ~seed:(Int64.of_int r) ((3 * r) + 7) in
          let down = Pseudo_random.bytes ~seed:(Int64.of_int w) ((3 * w) + 7) in
          Lwt.both
            (V.write c (Cstruct.of_bytes up) >|= ok "up")
            (read_exactly s (Bytes.length up))
          >>= fun ((), got_up) ->
          Lwt.both
            (V.write s (Cstruct.of_bytes down) >|= ok "down")
            (read_exactly c (Bytes.length down))
          >>= fun ((), got_down) ->
          if got_up <> up then fail "%s: client to server differs" name;
          if got_down <> down then fail "%s: server to client differs" name;
          close_both (s, c))
        sizes)
    sizes

(* ocaml-vchan's read-view contract at the ring's wrap point: a view is
   the contiguous bytes up to the ring's end, stays intact until the next
   read (the writer cannot overwrite it), and the next read acknowledges
   it and continues at offset 0. *)
let read_view_at_wrap () =
  run @@ fun () ->
  (* The server reads a 1 KiB ring. *)
  pair ~read_size:1024 ~write_size:1024 "wrap" >>= fun (s, c) ->
  let first = Bytes.to_string (Pseudo_random.bytes ~seed:1L 1000) in
  V.write c (Cstruct.of_string first) >|= ok "first" >>= fun () ->
  V.read s >>= fun r ->
  let v1 = match r with Ok (`Data v) -> v | _ -> fail "no first view" in
  if Cstruct.to_string v1 <> first then fail "first view differs";
  (* While v1 is held, only 24 bytes are free: a 100-byte write waits. *)
  let rest = Bytes.to_string (Pseudo_random.bytes ~seed:2L 100) in
  let writer = V.write c (Cstruct.of_string rest) >|= ok "rest" in
  Lwt.pause () >>= fun () ->
  if Lwt.is_sleeping writer |> not then fail "the writer overwrote a held view";
  if Cstruct.to_string v1 <> first then fail "a held view changed";
  (* The next read acknowledges v1 and stops at the ring's end. *)
  V.read s >>= fun r ->
  let v2 = match r with Ok (`Data v) -> Cstruct.to_string v | _ -> fail "no second view" in
  if v2 <> String.sub rest 0 24 then fail "the view before the wrap is %d bytes" (String.length v2);
  writer >>= fun () ->
  V.read s >>= fun r ->
  let v3 = match r with Ok (`Data v) -> Cstruct.to_string v | _ -> fail "no third view" in
  if v3 <> String.sub rest 24 76 then fail "the view after the wrap is %d bytes" (String.length v3);
  close_both (s, c)

(* `Eof comes after the last byte the peer wrote; writes to a closed peer
   fail with `Closed; reads after our own close or shutdown `read give `Eof. *)
let eof_and_close () =
  run @@ fun () ->
  pair "eof" >>= fun (s, c) ->
  V.write c (Cstruct.of_string "last words") >|= ok "write" >>= fun () ->
  V.close c >>= fun () ->
  read_exactly s 10 >>= fun got ->
  if Bytes.to_string got <> "last words" then fail "lost the data written before close";
  (V.read s >|= function Ok `Eof -> () | _ -> fail "no `Eof after the last byte")
  >>= fun () ->
  (V.write s (Cstruct.of_string "x") >|= function
   | Error `Closed -> ()
   | _ -> fail "write to a closed peer did not fail with `Closed")
  >>= fun () ->
  V.shutdown s `read >>= fun () ->
  (V.read s >|= function Ok `Eof -> () | _ -> fail "read after shutdown `read")
  >>= fun () ->
  V.close s >>= fun () ->
  V.close s >>= fun () ->
  (V.read s >|= function Ok `Eof -> () | _ -> fail "read after close")
  >>= fun () ->
  (V.write s (Cstruct.of_string "x") >|= function
   | Error `Closed -> ()
   | _ -> fail "write after close")
  >|= fun () -> V.assert_cleaned_up ()

(* assert_cleaned_up sees an endpoint left open; a reader blocked when its
   own endpoint closes gets `Eof. *)
let cleaned_up_sees_leaks () =
  run @@ fun () ->
  pair "leak" >>= fun (s, c) ->
  (match V.assert_cleaned_up () with
  | () -> fail "assert_cleaned_up passed with two endpoints open"
  | exception Failure _ -> ());
  let blocked = V.read s in
  V.close s >>= fun () ->
  (blocked >|= function Ok `Eof -> () | _ -> fail "blocked read after close")
  >>= fun () ->
  (match V.assert_cleaned_up () with
  | () -> fail "assert_cleaned_up passed with the client open"
  | exception Failure _ -> ());
  V.close c >|= fun () -> V.assert_cleaned_up ()

(* One endpoint with a reader waiting for data and a writer waiting for
   space at the same time: both are woken (they share one wait for the
   event channel), each when the peer does what it waits for. *)
let two_waiters () =
  run @@ fun () ->
  (* The server writes the 2 KiB in-page ring (orders 10/11). *)
  let ring = 2048 in
  pair ~read_size:1024 ~write_size:ring "two-waiters" >>= fun (s, c) ->
  V.write s (Cstruct.create ring) >|= ok "fill" >>= fun () ->
  let reading = V.read s in
  let writing = V.write s (Cstruct.of_string "more") in
  if Lwt.state reading <> Lwt.Sleep || Lwt.state writing <> Lwt.Sleep then
    fail "a waiter did not wait";
  read_exactly c ring >>= fun _ ->
  (* The next read releases that view (freeing the ring), then waits. *)
  let more = read_exactly c 4 in
  (writing >|= ok "blocked write") >>= fun () ->
  if Lwt.state reading <> Lwt.Sleep then fail "the reader woke without data";
  V.write c (Cstruct.of_string "reply") >|= ok "reply" >>= fun () ->
  (reading >|= function
   | Ok (`Data v) when Cstruct.to_string v = "reply" -> ()
   | _ -> fail "the blocked read did not get the reply")
  >>= fun () ->
  more >>= fun got ->
  if Bytes.to_string got <> "more" then fail "lost the blocked write";
  close_both (s, c)

let bad_sizes () =
  run @@ fun () ->
  Lwt.catch
    (fun () ->
      V.server ~domid:1 ~port:(port "big-ring") ~read_size:(2 * 1024 * 1024) () >|= fun _ ->
      fail "a 2 MiB ring was accepted")
    (function
      | Vchan_rs.Error.Vchan (`Invalid_argument _) -> Lwt.return_unit
      | e -> Lwt.fail e)
  >|= fun () -> V.assert_cleaned_up ()

(* Port names are validated by the Rust core (through an external reading
   the OCaml string in place): every length around the word size, with a
   bad character last or first. *)
let port_names () =
  for n = 1 to 40 do
    let good = String.init n (fun i -> "aZ9_-".[i mod 5]) in
    (match Vchan_rs.Port.of_string good with
    | Ok p -> if Vchan_rs.Port.to_string p <> good then fail "port %S changed" good
    | Error _ -> fail "port %S refused" good);
    List.iter
      (fun bad ->
        match Vchan_rs.Port.of_string bad with
        | Ok _ -> fail "port %S accepted" bad
        | Error (`Msg _) -> ())
      [ String.sub good 0 (n - 1) ^ "/"; " " ^ good; good ^ "\000" ]
  done;
  match Vchan_rs.Port.of_string "" with Ok _ -> fail "empty port accepted" | Error _ -> ()

let domids () =
  List.iter
    (fun d ->
      match Vchan_rs.Domid.of_int d with
      | Ok d' when d' = d -> ()
      | _ -> fail "domain id %d refused" d)
    [ 0; 1; 32751 ];
  List.iter
    (fun d ->
      match Vchan_rs.Domid.of_int d with
      | Ok _ -> fail "domain id %d accepted" d
      | Error (`Msg _) -> ())
    [ -1; 32752; 0x7fff; max_int; min_int ];
  List.iter
    (fun (s, want) ->
      match (Vchan_rs.Domid.of_string s, want) with
      | Ok d, Some w when d = w -> ()
      | Error (`Msg m), None ->
          if not (String.length m > 0) then fail "no reason for %S" s
      | _ -> fail "domain id %S misread" s)
    [ ("0", Some 0); ("32751", Some 32751); ("32752", None); ("-1", None);
      ("abc", None); ("", None); (" 1", None); ("1\n", None); ("+1", None);
      ("0x1", None); ("1_0", None); ("1\000", None); ("007", Some 7) ]

let all =
  [
    { id = "echo"; doc = "echo"; run = echo_case "echo" (fun v -> v) };
    { id = "echo-caps"; doc = "capitalising echo"; run = echo_case "caps" capitalise };
    { id = "both-ways-64MiB"; doc = "64 MiB both ways at once with digests"; run = big_both_ways };
    { id = "every-order"; doc = "every ring order on each side"; run = every_order };
    { id = "read-view-at-wrap"; doc = "read view at the wrap point"; run = read_view_at_wrap };
    { id = "eof-close-shutdown"; doc = "`Eof after the last byte, close, shutdown"; run = eof_and_close };
    { id = "cleaned-up-sees-leaks"; doc = "assert_cleaned_up sees leaks"; run = cleaned_up_sees_leaks };
    { id = "two-waiters"; doc = "a blocked reader and writer on one endpoint"; run = two_waiters };
    { id = "ring-over-1MiB-refused"; doc = "ring larger than 1 MiB refused"; run = bad_sizes };
    { id = "port-names"; doc = "port names validated by the core"; run = port_names };
    { id = "domain-ids"; doc = "domain ids validated by the core"; run = domids };
  ]
