(** The rendezvous in xenstore, as ocaml-vchan's [Vchan.Xenstore]: a
    {!S.CONFIGURATION} over any xenstore client, so that a Xen endpoint
    needs no configuration code.

    The layout is ocaml-vchan's (and what Xen's C peers are given):
    - the server writes [<dir>/ring-ref] and [<dir>/event-channel], where
      [<dir>] is [<its domain path>/data/vchan/<client domid>/<port>], in
      one transaction, each key owned by the server's domain, readable by
      the client's domain and by no other;
    - the client reads its own domain id from the relative key [domid],
      then waits (a xenstore watch, through {!XS.wait}) until both keys are
      readable under the server's domain path;
    - the server's {!Make.delete} removes [<dir>], and the client's
      directory [<dir>/..] too when no other port is left in it, in one
      transaction.

    This library does not depend on the [xenstore] package: {!XS} is the
    part of its [Xs_client_lwt.S] that the rendezvous uses, with the two
    items that would name [Xs_protocol] ({!XS.val-acl} and {!XS.exception-Eagain}) made
    parameters. [Vchan_rs_xen.Xs] (library [vchan-rs-xen]) is mirage-xen's
    [Xen_os.Xs] with those two added. *)

(** The xenstore client the rendezvous needs. [Xen_os.Xs] and every
    [Xs_client_lwt.S] have all of it but {!XS.val-acl} and {!XS.exception-Eagain}:
    [struct include Xen_os.Xs type acl = Xs_protocol.ACL.t let acl ...
    exception Eagain = Xs_protocol.Eagain end] is one. *)
module type XS = sig
  type client
  (** A connection to the store. *)

  val make : unit -> client Lwt.t
  (** [make ()] connects to the store (mirage-xen's is a shared client). *)

  type handle
  (** Access to the store within {!immediate}, {!transaction} or
      {!wait}. *)

  val immediate : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  (** [immediate c f] runs [f] with each operation applied at once. *)

  val transaction : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  (** [transaction c f] runs [f]'s operations as one atomic transaction,
      repeating [f] if the commit conflicts. *)

  val wait : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  (** [wait c f] runs [f] until it returns without raising {!Eagain},
      running it again whenever a path [f] read changes. *)

  val directory : handle -> string -> string list Lwt.t
  (** [directory h path] lists the children of [path]. *)

  val read : handle -> string -> string Lwt.t
  (** [read h path] is the value at [path] (relative paths are under the
      caller's domain path); it fails when [path] is missing or may not be
      read by the caller. *)

  val write : handle -> string -> string -> unit Lwt.t
  (** [write h path value] writes [value] at [path]. *)

  val rm : handle -> string -> unit Lwt.t
  (** [rm h path] removes [path] and everything under it. *)

  val getdomainpath : handle -> int -> string Lwt.t
  (** [getdomainpath h domid] is [domid]'s domain path
      ([/local/domain/<domid>] under Xen). *)

  type acl
  (** Permissions of a key ([Xs_protocol.ACL.t]). *)

  val acl : owner:int -> readers:int list -> acl
  (** [acl ~owner ~readers]: [owner] has full access, each of [readers] may
      read, no other domain has access ([Xs_protocol.ACL.{ owner; other =
      NONE; acl = List.map (fun d -> (d, READ)) readers }]). *)

  val setperms : handle -> string -> acl -> unit Lwt.t
  (** [setperms h path acl] sets [path]'s permissions. *)

  exception Eagain
  (** Raised by the function given to {!wait} when what it waits for is not
      there yet ([Xs_protocol.Eagain]). *)
end

val path : domain_path:string -> client_domid:int -> Port.t -> string
(** [path ~domain_path ~client_domid port] is the rendezvous directory of
    [port] for [client_domid]:
    [<domain_path>/data/vchan/<client_domid>/<port>]. *)

(** [Make (Xs)] is the rendezvous over [Xs]. *)
module Make (Xs : XS) : S.CONFIGURATION
