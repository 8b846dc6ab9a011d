let range = "expected 0..32751"

(* The rules are the Rust core's (vchan_core::name): every part of vchan-rs
   accepts the same ids, spelt the same way. *)
let of_int d =
  if Freestanding.domid_valid d = 1 then Ok d
  else Error (`Msg (Printf.sprintf "invalid domain id %d: %s" d range))

let of_string s =
  match Freestanding.domid_parse s with
  | d when d >= 0 -> Ok d
  | _ ->
      Error
        (`Msg (Printf.sprintf "invalid domain id %S: %s, in decimal digits" s range))
