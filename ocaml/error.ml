type t =
  [ `Closed
  | `Busy
  | `Addr_in_use
  | `Timeout
  | `Invalid_argument of string
  | `Unavailable of string
  | `Protocol of string
  | `System of string ]

let to_string : t -> string = function
  | `Closed -> "vchan closed"
  | `Busy -> "vchan port busy: another client is already connected"
  | `Addr_in_use ->
      "vchan port already served for this client domain (by a live server, \
       or, under Xen, by an entry not provably stale: xenstore-rm it if it is)"
  | `Timeout -> "timed out waiting for the vchan server"
  | `Invalid_argument m | `Unavailable m | `Protocol m | `System m -> m

let pp ppf e = Format.pp_print_string ppf (to_string e)

exception Vchan of t

let () =
  Printexc.register_printer (function
    | Vchan e -> Some ("Vchan_rs.Error.Vchan: " ^ to_string e)
    | _ -> None)

(* Keep in sync with rust/vchan-ocaml/src/lib.rs (Kind). *)
let of_code ((kind, msg) : int * string) : t =
  match kind with
  | 1 -> `Closed
  | 2 -> `Busy
  | 3 -> `Addr_in_use
  | 4 -> `Timeout
  | 5 -> `Invalid_argument msg
  | 6 -> `Unavailable msg
  | 7 -> `Protocol msg
  | _ -> `System msg
