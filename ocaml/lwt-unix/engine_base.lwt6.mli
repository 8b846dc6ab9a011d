(* The class [Engine]'s engine inherits, for lwt >= 6 (engine_base.lwt5.mli
   is the same for lwt < 6; dune copies one of the two to engine_base.mli
   by lwt's version). *)

(** The identity of every engine made by [Engine]. *)
type Lwt_engine.engine_id += Vchan_rs_epoll

(** Lwt's [Lwt_engine.abstract] with its virtual method [id] (new in lwt 6)
    defined: [Vchan_rs_epoll]. *)
class virtual t : object
  inherit Lwt_engine.abstract

  method id : Lwt_engine.engine_id
end
