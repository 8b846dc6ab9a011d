(* The class [Engine]'s engine inherits, for lwt < 6 (engine_base.lwt6.mli
   is the same for lwt >= 6; dune copies one of the two to engine_base.mli
   by lwt's version). *)

(** Lwt's [Lwt_engine.abstract] as it is: lwt 5 has no engine identities. *)
class virtual t : object
  inherit Lwt_engine.abstract
end
