(* Vchan_rs.In_memory (the functor over the Rust core, both ends in this
   process and one Lwt scheduler): the rows issue 11 compares with
   mirage/ocaml-vchan's pure-OCaml In_memory, measured on the development
   machine at ~15 GB/s (1 GiB through 64 KiB rings) and ~2.4 us (64-byte
   round trip). ocaml-vchan is not installed here, so those figures are
   quoted, not re-measured. *)

open Lwt.Infix
module V = Vchan_rs.In_memory

let get = function Ok x -> x | Error e -> failwith (Vchan_rs.Error.to_string e)
let ocaml_vchan_gb_s = 15.0
let ocaml_vchan_us = 2.4

let pair name =
  let port = Result.get_ok (Vchan_rs.Port.of_string name) in
  let s = V.server ~domid:1 ~port ~read_size:65536 ~write_size:65536 () in
  V.client ~domid:0 ~port () >>= fun c -> s >|= fun s -> (s, c)

module R = Flow_util.Make (V)

let read_n = R.read_n

let round_trips rounds size =
  pair "bench-rtt" >>= fun (s, c) ->
  let echo = Cstruct.create size in
  let rec server () =
    V.read s >>= function
    | Ok (`Data v) ->
        Cstruct.blit v 0 echo 0 (Cstruct.length v);
        read_n s echo (Cstruct.length v) >>= fun () -> V.write s echo >|= get >>= server
    | _ -> V.close s
  in
  let msg = Cstruct.create size and back = Cstruct.create size in
  let srv = server () in
  let t0 = Unix.gettimeofday () in
  let rec loop i =
    if i = rounds then Lwt.return_unit
    else V.write c msg >|= get >>= fun () -> read_n c back 0 >>= fun () -> loop (i + 1)
  in
  loop 0 >>= fun () ->
  let us = (Unix.gettimeofday () -. t0) /. float rounds *. 1e6 in
  V.close c >>= fun () ->
  srv >|= fun () ->
  Printf.printf "In_memory %d-byte round trip: %.2f us (ocaml-vchan %.1f us: %.2fx its time)\n%!"
    size us ocaml_vchan_us (us /. ocaml_vchan_us)

let throughput () =
  pair "bench-gib" >>= fun (s, c) ->
  let rec sink () = V.read s >>= function Ok (`Data _) -> sink () | _ -> V.close s in
  let srv = sink () in
  let chunk = Cstruct.create (1 lsl 20) and total = 1 lsl 30 in
  let t0 = Unix.gettimeofday () in
  let rec send n =
    if n >= total then Lwt.return_unit
    else V.write c chunk >|= get >>= fun () -> send (n + Cstruct.length chunk)
  in
  send 0 >>= fun () ->
  let dt = Unix.gettimeofday () -. t0 in
  V.close c >>= fun () ->
  srv >|= fun () ->
  let gb_s = float total /. dt /. 1e9 in
  Printf.printf
    "In_memory 1 GiB one way (64 KiB rings): %.3f s, %.1f GB/s (ocaml-vchan %.0f GB/s: %.2fx)\n%!"
    dt gb_s ocaml_vchan_gb_s (gb_s /. ocaml_vchan_gb_s)

let run rounds size =
  Lwt_main.run (round_trips rounds size >>= throughput);
  V.assert_cleaned_up ()
