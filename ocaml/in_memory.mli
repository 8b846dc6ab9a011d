(** Both ends of vchans in one process, over the Rust core: the functor
    {!Endpoint.Make} applied to {!In_memory_events}, memory in bigarrays
    and a rendezvous table, as ocaml-vchan's [In_memory]. For test suites
    of code written against {!S.ENDPOINT}. *)

include
  S.ENDPOINT
    with type port = Port.t
     and type error = Error.t
     and type write_error = Error.t

val assert_cleaned_up : unit -> unit
(** [assert_cleaned_up ()] raises [Failure] if a page is still shared or
    mapped, a rendezvous still published, or an event channel still open:
    call it after closing every endpoint. *)
