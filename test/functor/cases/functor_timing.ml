open Lwt.Infix
module V = Vchan_rs.In_memory

type figure = { id : string; value : float; unit_ : string; higher_is_better : bool }

let mib = 1024 * 1024

(* [size] bytes client to server through [ring]-byte rings; the reader
   copies each view into a scratch buffer. Returns seconds. *)
let stream ~now ~size ~ring () =
  Functor_cases.run @@ fun () ->
  Functor_cases.pair ~read_size:ring ~write_size:ring "time-stream" >>= fun (s, c) ->
  let chunk = Cstruct.of_bytes (Pseudo_random.bytes ring) in
  let sink = Bytes.create ring in
  let t0 = now () in
  let rec send off =
    if off >= size then Lwt.return_unit
    else V.write c chunk >|= Functor_cases.ok "stream write" >>= fun () -> send (off + ring)
  in
  let rec receive got =
    if got >= size then Lwt.return got
    else
      V.read s >>= function
      | Ok (`Data v) ->
          let n = Cstruct.length v in
          Cstruct.blit_to_bytes v 0 sink 0 n;
          receive (got + n)
      | Ok `Eof -> failwith (Printf.sprintf "stream: `Eof after %d bytes" got)
      | Error e -> failwith ("stream read: " ^ Vchan_rs.Error.to_string e)
  in
  Lwt.both (send 0) (receive 0) >>= fun ((), got) ->
  let t = now () -. t0 in
  if got <> size then failwith (Printf.sprintf "stream: %d bytes arrived, not %d" got size);
  Functor_cases.close_both (s, c) >|= fun () -> t

(* [n] round trips of a [len]-byte message. Returns seconds. *)
let ping_pong ~now ~n ~len () =
  Functor_cases.run @@ fun () ->
  Functor_cases.pair "time-ping-pong" >>= fun (s, c) ->
  let msg = Cstruct.of_bytes (Pseudo_random.bytes len) in
  let rec server i =
    if i = n then Lwt.return_unit
    else
      Functor_cases.read_exactly s len >>= fun b ->
      V.write s (Cstruct.of_bytes b) >|= Functor_cases.ok "pong" >>= fun () -> server (i + 1)
  in
  let rec client i =
    if i = n then Lwt.return_unit
    else
      V.write c msg >|= Functor_cases.ok "ping" >>= fun () ->
      Functor_cases.read_exactly c len >>= fun _ -> client (i + 1)
  in
  let t0 = now () in
  Lwt.both (server 0) (client 0) >>= fun ((), ()) ->
  let t = now () -. t0 in
  Functor_cases.close_both (s, c) >|= fun () -> t

let best_of_3 f = List.fold_left min infinity [ f (); f (); f () ]

let all ~now =
  let size = 64 * mib and n = 10_000 in
  let stream_s = best_of_3 (stream ~now ~size ~ring:65536) in
  let ping_s = best_of_3 (ping_pong ~now ~n ~len:64) in
  [
    {
      id = "stream-64MiB-64KiB";
      value = float_of_int (size / mib) /. stream_s;
      unit_ = "MiB/s";
      higher_is_better = true;
    };
    {
      id = "ping-pong-64B";
      value = ping_s /. float_of_int n *. 1e6;
      unit_ = "us";
      higher_is_better = false;
    };
  ]
