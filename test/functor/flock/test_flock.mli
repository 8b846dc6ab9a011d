(** flock(2), for test_wire (see flock_stubs.c). *)

val lock : Unix.file_descr -> bool
(** [lock fd] takes an exclusive flock of [fd] without waiting; [false] if
    another holds one. *)
