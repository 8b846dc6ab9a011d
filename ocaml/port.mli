(** Vchan port names.

    A port names one vchan between a server domain and a client domain; the
    server publishes it in xenstore at
    [/local/domain/<server>/data/vchan/<client>/<port>]. Valid names are 1
    to 255 of [[a-zA-Z0-9_-]]: ocaml-vchan's [Vchan.Port] characters, and at
    most a file name's length (the unix backend stores a port as one). *)

type t
(** A valid port name. *)

val of_string : string -> (t, [> `Msg of string ]) result
(** [of_string s] is [Ok p] when [s] matches [[a-zA-Z0-9_-]{1,255}],
    otherwise [Error (`Msg why)] (why names [s] and the rule). *)

val to_string : t -> string
(** [to_string p] is the name [p] was made from. *)
