type t = Unix | Xen

let of_string = function
  | "unix" -> Ok Unix
  | "xen" -> Ok Xen
  | s ->
      Error
        (`Msg (Printf.sprintf "unknown vchan backend %S (expected unix or xen)" s))

let to_string = function Unix -> "unix" | Xen -> "xen"
let env_var = "VCHAN_BACKEND"

let default () =
  match Sys.getenv_opt env_var with
  | None | Some "" -> Ok Unix
  | Some s -> of_string s
let unix_dir = Stubs.unix_dir
