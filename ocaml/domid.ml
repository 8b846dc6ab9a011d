let range = "expected 0..32751"

(* The rule is the Rust core's (vchan_core::name). *)
let of_int d =
  if Freestanding.domid_valid d = 1 then Ok d
  else Error (`Msg (Printf.sprintf "invalid domain id %d: %s" d range))

let of_string s =
  match int_of_string_opt s with
  | Some d when Freestanding.domid_valid d = 1 -> Ok d
  | _ -> Error (`Msg (Printf.sprintf "invalid domain id %S: %s" s range))
