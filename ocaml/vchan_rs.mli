(** Xen vchan for OCaml, over a Rust implementation of the protocol.

    A drop-in for the shapes of mirage/ocaml-vchan 6: {!Port} is
    [Vchan.Port], {!S.ENDPOINT} is [Vchan.S.ENDPOINT] (with a
    [Mirage_flow.S]-shaped flow), and {!Endpoint} implements it for Lwt on
    Unix, with the unix backend (no hypervisor) by default and Xen when
    asked. [Vchan_rs_lwt_unix] (library [vchan-rs.lwt-unix]) adds
    [Lwt_io] channels, as ocaml-vchan's [Vchan_lwt_unix].

    {[
      (* Domain 0 (VCHAN_DOMID=0): serve domain 1 on port "hello". *)
      let port = Result.get_ok (Vchan_rs.Port.of_string "hello") in
      Vchan_rs.Endpoint.server ~domid:1 ~port () >>= fun t ->
      Vchan_rs.Endpoint.write t (Cstruct.of_string "hi")
    ]} *)

module Port = Port
(** Port names, as ocaml-vchan's [Vchan.Port]. *)

module Error = Error
(** The errors of endpoints, and the exception {!Error.Vchan}. *)

module Backend = Backend
(** The backends: unix (no hypervisor, the default) and Xen. *)

module S = S
(** Module types: [Mirage_flow.S]'s and [Vchan.S.ENDPOINT]'s shapes. *)

module Endpoint = Endpoint
(** Endpoints for Lwt on Unix: {!S.ENDPOINT} and extras. *)
