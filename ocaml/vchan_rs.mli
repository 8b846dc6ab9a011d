(** Xen vchan for OCaml and MirageOS, over a Rust implementation of the
    protocol (library [vchan-rs]).

    A drop-in for mirage/ocaml-vchan 6's library [vchan]: {!Port} is
    [Vchan.Port], {!S} holds [Vchan.S]'s module types ([ENDPOINT] with a
    [Mirage_flow.S]-shaped flow, [EVENTS], [MEMORY], [CONFIGURATION]),
    {!Endpoint.Make} is [Vchan.Endpoint.Make], {!In_memory} and
    {!In_memory_events} are ocaml-vchan's. The rings are those of the Rust
    core, linked from a freestanding archive (no libc, no allocation, no
    threads), so this library depends on nothing a unikernel lacks.

    For Lwt programs on Unix, [Vchan_rs_lwt_unix] (library
    [vchan-rs-unix]) has an endpoint over the unix backend (no
    hypervisor) or Xen's libraries, and [Lwt_io] channels.

    {[
      (* Two endpoints in one process. *)
      let port = Result.get_ok (Vchan_rs.Port.of_string "hello") in
      let server = Vchan_rs.In_memory.server ~domid:1 ~port () in
      Vchan_rs.In_memory.client ~domid:0 ~port () >>= fun c ->
      server >>= fun s ->
      Vchan_rs.In_memory.write c (Cstruct.of_string "hi") >>= fun _ ->
      Vchan_rs.In_memory.read s
    ]} *)

module Port = Port
(** Port names, as ocaml-vchan's [Vchan.Port]. *)

module Domid = Domid
(** Domain ids, checked by the Rust core's rule. *)

module Error = Error
(** The errors of endpoints, and the exception {!Error.Vchan}. *)

module S = S
(** Module types: ocaml-vchan's [Vchan.S] ([ENDPOINT] with a
    [Mirage_flow.S]-shaped flow, [EVENTS], [MEMORY], [CONFIGURATION]). *)

module Endpoint = Endpoint
(** The functor [Make], as ocaml-vchan's [Vchan.Endpoint]. *)

module In_memory_events = In_memory_events
(** Event channels within one process, as ocaml-vchan's. *)

module In_memory = In_memory
(** Both ends in one process, as ocaml-vchan's [Vchan.In_memory]. *)

module Xenstore = Xenstore
(** The rendezvous in xenstore, as ocaml-vchan's [Vchan.Xenstore]. *)
