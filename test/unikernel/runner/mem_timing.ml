let kib = 1024
let mib = 1024 * kib

let best_of_3 f = List.fold_left min infinity [ f (); f (); f () ]

(* Seconds for [n] calls of [f]. *)
let time ~now n f () =
  let t0 = now () in
  for _ = 1 to n do
    f ()
  done;
  now () -. t0

let rate ~id ~bytes ~n seconds =
  {
    Functor_timing.id;
    value = float_of_int (bytes * n) /. float_of_int mib /. seconds;
    unit_ = "MiB/s";
    higher_is_better = true;
  }

let all ~now =
  let big = 64 * kib and n_big = 8192 (* 512 MiB *) and n_small = 1_000_000 in
  let src = Cstruct.of_bytes (Pseudo_random.bytes big) in
  let same = Cstruct.of_bytes (Cstruct.to_bytes src) in
  let dst = Bytes.create big in
  let copy_big = best_of_3 (time ~now n_big (fun () -> Cstruct.blit_to_bytes src 0 dst 0 big)) in
  let copy_small = best_of_3 (time ~now n_small (fun () -> Cstruct.blit_to_bytes src 0 dst 0 64)) in
  let fill = Cstruct.create big in
  let set_big = best_of_3 (time ~now n_big (fun () -> Cstruct.memset fill 0x5a)) in
  let cmp_big =
    best_of_3 (time ~now n_big (fun () -> if not (Cstruct.equal src same) then failwith "memcmp: differ"))
  in
  [
    rate ~id:"memcpy-64KiB" ~bytes:big ~n:n_big copy_big;
    {
      Functor_timing.id = "memcpy-64B";
      value = copy_small /. float_of_int n_small *. 1e9;
      unit_ = "ns";
      higher_is_better = false;
    };
    rate ~id:"memset-64KiB" ~bytes:big ~n:n_big set_big;
    rate ~id:"memcmp-64KiB" ~bytes:big ~n:n_big cmp_big;
  ]
