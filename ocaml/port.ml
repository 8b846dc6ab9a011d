type t = string

(* Validation is Rust's (vchan::Port::new): one rule, one place. *)
let of_string s =
  match Stubs.port_check s with Ok () -> Ok s | Error m -> Error (`Msg m)

let to_string t = t
