(** The functor [Vchan_rs.Endpoint.Make] over [Vchan_rs.In_memory]: both
    ends in one process and one Lwt scheduler, the rings those of the Rust
    core in bigarrays. Each case closes both ends and checks
    [In_memory.assert_cleaned_up]. *)

type case = {
  id : string;  (** A short name without spaces (the unikernel's result lines). *)
  doc : string;  (** What the case checks, in a few words. *)
  run : unit -> unit;  (** Runs the case; raises on failure. *)
}
(** One test case. *)

val all : case list
(** Every case, in a fixed order. *)

(** {1 Helpers, for {!Functor_timing}} *)

val run : (unit -> 'a Lwt.t) -> 'a
(** [run f] is a scheduler for one process with no I/O: it runs paused
    threads until [f ()]'s promise resolves, and fails when nothing is left
    to run (a deadlock). *)

val pair :
  ?read_size:int ->
  ?write_size:int ->
  string ->
  (Vchan_rs.In_memory.t * Vchan_rs.In_memory.t) Lwt.t
(** [pair ?read_size ?write_size port] is a connected [(server, client)] on
    [port] (the sizes are the server's rings). *)

val close_both : Vchan_rs.In_memory.t * Vchan_rs.In_memory.t -> unit Lwt.t
(** [close_both (server, client)] closes both, then checks
    [In_memory.assert_cleaned_up]. *)

val ok : string -> ('a, Vchan_rs.Error.t) result -> 'a
(** [ok what r] is [r]'s value; [Error e] raises [Failure] naming [what]. *)

val read_exactly : Vchan_rs.In_memory.t -> int -> bytes Lwt.t
(** [read_exactly t n] reads exactly [n] bytes from [t], copied out of the
    read views; fails on [`Eof], an error, or a view longer than asked. *)
