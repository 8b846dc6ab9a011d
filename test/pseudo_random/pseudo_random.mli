(** Deterministic pseudo-random test data. *)

val bytes : ?seed:int64 -> int -> bytes
(** [bytes ?seed n] is [n] deterministic pseudo-random bytes (xorshift64
    from [seed]), fast enough for 100 MiB. *)
