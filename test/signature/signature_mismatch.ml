(* The control of signature_check.ml: a signature that Vchan_rs.Port does not
   have (one value more). The compiler must refuse this file; if it ever
   compiled, module constraints would not be checking anything. *)

module Port_mismatch : sig
  type t

  val of_string : string -> (t, [> `Msg of string ]) result
  val to_string : t -> string
  val not_in_vchan_rs : t -> int
end =
  Vchan_rs.Port
