(** Event channels over mirage-xen's [Xen_os.Eventchn] and
    [Xen_os.Activations] (ocaml-vchan's [Events_xen]). A port is the event
    channel's number, as published in xenstore; [0] is not a port (Xen's C
    peers read it as failure). *)

include
  Vchan_rs.S.EVENTS
    with type port = int
     and type channel = Xen_os.Eventchn.t
     and type event = Xen_os.Activations.event
