(** Vchan endpoints for Mirage unikernels on Xen (library [vchan-rs-xen]):
    the drop-in for ocaml-vchan's [Vchan_xen] (library [vchan-xen]).

    [Vchan_rs_xen] is {!Vchan_rs.Endpoint.Make} applied to mirage-xen's
    event channels ({!Events}), grant tables ({!Memory}) and xenstore
    ({!Config}, ocaml-vchan's layout), so it talks to ocaml-vchan's
    [Vchan_xen], to Xen's libxenvchan and to any vchan-rs peer. To switch a
    unikernel from [vchan-xen], rename the package ([vchan-xen] to
    [vchan-rs-xen]) and the modules ([Vchan_xen] to [Vchan_rs_xen],
    [Vchan] to [Vchan_rs]).

    {[
      (* In domain 5, the client of the server in domain 3. *)
      let port = Result.get_ok (Vchan_rs.Port.of_string "data") in
      Vchan_rs_xen.client ~domid:3 ~port () >>= fun flow ->
      Vchan_rs_xen.write flow (Cstruct.of_string "hello")
    ]} *)

include
  Vchan_rs.S.ENDPOINT
    with type port = Vchan_rs.Port.t
     and type error = Vchan_rs.Error.t
     and type write_error = Vchan_rs.Error.t

module Events = Events
(** Event channels over [Xen_os.Eventchn] (ocaml-vchan's [Events_xen]). *)

module Memory = Memory
(** Grant tables over [Xen_os.Xen] (ocaml-vchan's [Memory_xen]). *)

module Xs = Xs
(** [Xen_os.Xs] as a {!Vchan_rs.Xenstore.XS}. *)

module Config : Vchan_rs.S.CONFIGURATION
(** The rendezvous, [Vchan_rs.Xenstore.Make (Xs)]. *)
