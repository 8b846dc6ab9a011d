(** Timings of the functor over [Vchan_rs.In_memory] (both ends in one
    process): printed next to each other by [make test-unikernel] for the
    Solo5 unikernel and a Linux process of the same source. Nothing is
    asserted about them; the data's length is checked. *)

type figure = {
  id : string;  (** A short name without spaces, the same on every platform. *)
  value : float;  (** The best of the runs. *)
  unit_ : string;  (** [value]'s unit, e.g. ["MiB/s"] or ["us"]. *)
  higher_is_better : bool;  (** A rate ([true]) or a time per operation. *)
}
(** One measured figure. *)

val all : now:(unit -> float) -> figure list
(** [all ~now] measures, each as the best of three runs, with [now ()] a
    monotonic clock in seconds:
    - [stream-64MiB-64KiB]: 64 MiB from client to server through 64 KiB
      rings, written 64 KiB at a time, the reader copying every view out
      (MiB/s);
    - [ping-pong-64B]: 10000 round trips of a 64-byte message (us per
      round trip). *)
