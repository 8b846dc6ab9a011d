(** Xen domain ids.

    A vchan joins a server domain and a client domain, each named by its
    domain id. Valid ids are [0] to [32751] (Xen's [DOMID_FIRST_RESERVED]
    is 32752); the rule is the Rust core's, so every part of vchan-rs
    accepts the same ids. *)

val of_int : int -> (int, [> `Msg of string ]) result
(** [of_int d] is [Ok d] for a valid domain id, otherwise
    [Error (`Msg why)] (why names [d] and the range). *)

val of_string : string -> (int, [> `Msg of string ]) result
(** [of_string s] parses a domain id written in decimal digits and nothing
    else (no sign, blank, [0x] or [_]), as {!of_int} checks it: the rule of
    the whole of vchan-rs, [$VCHAN_DOMID] included. [Error (`Msg why)]
    names [s] when it is not one. *)
