(** Vchan port names.

    A port names one vchan between a server domain and a client domain; the
    server publishes it in xenstore at
    [/local/domain/<server>/data/vchan/<client>/<port>]. Valid names are one
    or more of [[a-zA-Z0-9_-]], exactly as ocaml-vchan's [Vchan.Port]. *)

type t
(** A valid port name. *)

val of_string : string -> (t, [> `Msg of string ]) result
(** [of_string s] is [Ok p] when [s] matches [[a-zA-Z0-9_-]+], otherwise
    [Error (`Msg why)]. *)

val to_string : t -> string
(** [to_string p] is the name [p] was made from. *)
