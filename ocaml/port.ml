type t = string

(* The rule is the Rust core's (vchan_core::name::valid_port). *)
let of_string s =
  if Freestanding.port_valid s = 1 then Ok s
  else
    Error
      (`Msg
        (Printf.sprintf
           "invalid vchan port %S: expected 1 to 255 of [a-zA-Z0-9_-]" s))

let to_string t = t
