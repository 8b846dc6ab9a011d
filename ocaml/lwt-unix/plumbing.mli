(** What [Vchan_rs.Endpoint.Make_with] needs to make the Lwt Unix endpoint
    over one of rust/vchan's backends (the stubs of
    rust/vchan-lwt-stubs/src/plumbing.rs): its event channels watched
    through Lwt's engine, its shared memory, its rendezvous store, the
    unmap notification of the control page, the peer's death as the
    backend reports it, and a spin phase. *)

(** The backend. *)
module type BACKEND = sig
  val name : string option
  (** Its name ([Some "unix"], [Some "xen"]), or [None] for
      [$VCHAN_BACKEND]'s. *)
end

(** The platform over backend [B]. [E.connect] raises
    {!Vchan_rs.Endpoint.Stale} when nobody listens on the published port
    any more (a killed server's rendezvous). Errors are raised as
    {!Vchan_rs.Error.Vchan}. *)
module Make (B : BACKEND) : Vchan_rs.Endpoint.PLATFORM

val fd_read : Unix.file_descr -> Cstruct.t -> int
(** [fd_read fd buf]: one [read(2)] of [fd] straight into [buf]: the
    count (0 at end-of-file), or [-errno]. *)

val eagain : int
(** [-EAGAIN] (and [-EWOULDBLOCK]). *)
