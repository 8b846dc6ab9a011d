(** mirage-xen's xenstore client [Xen_os.Xs], with the two items of
    {!Vchan_rs.Xenstore.XS} that name the xenstore package's
    [Xs_protocol]: the ACL and the [Eagain] of [wait]. *)

include
  Vchan_rs.Xenstore.XS
    with type client = Xen_os.Xs.client
     and type handle = Xen_os.Xs.handle
     and type acl = Xs_protocol.ACL.t
