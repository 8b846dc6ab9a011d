(** Mirage 3's [OS] for Xen, as far as ocaml-vchan's test unikernels use it:
    the xenstore client and a sleep. *)

module Xs = Xen_os.Xs
(** mirage-xen's xenstore client. *)

(** Sleeping. *)
module Time : sig
  val sleep_ns : int64 -> unit Lwt.t
  (** [sleep_ns n] resolves after [n] nanoseconds ([Mirage_sleep.ns]). *)
end
