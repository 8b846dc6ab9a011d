(** Mirage 3's console signature, as far as ocaml-vchan's test unikernels
    use it, and a console on Solo5's (standard output). *)

(** A console. *)
module type S = sig
  type t
  (** A console. *)

  val log : t -> string -> unit Lwt.t
  (** [log t line] prints [line] and a newline. *)
end

module Stdout : S with type t = unit
(** The unikernel's standard output (Solo5's console). *)
