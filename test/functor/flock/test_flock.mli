(** What test_wire needs of Linux beyond OCaml's Unix library (see
    flock_stubs.c). *)

val lock : Unix.file_descr -> bool
(** [lock fd] takes an exclusive flock of [fd] without waiting; [false] if
    another holds one. *)

val sealed_memfd : int -> Unix.file_descr
(** [sealed_memfd len] is a memfd of [len] bytes sealed against shrinking
    and growing, as the unix backend shares pages. *)
