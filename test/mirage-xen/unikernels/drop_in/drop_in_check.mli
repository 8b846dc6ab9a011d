(** Compile-time checks that [Vchan_rs_xen] fits where ocaml-vchan's
    [Vchan_xen] is used. *)

module Flow : Mirage_flow.S with type flow = Vchan_rs_xen.flow
(** [Vchan_rs_xen] as mirage-flow 4's flow signature. *)
