include Xen_os.Xs

type acl = Xs_protocol.ACL.t

let acl ~owner ~readers =
  { Xs_protocol.ACL.owner;
    other = Xs_protocol.ACL.NONE;
    acl = List.map (fun d -> (d, Xs_protocol.ACL.READ)) readers }

exception Eagain = Xs_protocol.Eagain
