module Evtchn = Xen_os.Eventchn
module Activations = Xen_os.Activations

type port = int

let port_of_string s =
  match int_of_string_opt (String.trim s) with
  | Some p when p > 0 -> Ok p
  | _ -> Error (`Msg (Printf.sprintf "not an event channel port: %S" s))

let string_of_port = string_of_int

type channel = Evtchn.t
type event = Activations.event

let initial = Activations.program_start
let recv = Activations.after
let send channel = Evtchn.notify (Evtchn.init ()) channel

let listen domid =
  let h = Evtchn.init () in
  let channel = Evtchn.bind_unbound_port h domid in
  Evtchn.unmask h channel;
  (Evtchn.to_int channel, channel)

let connect domid port =
  let h = Evtchn.init () in
  let channel = Evtchn.bind_interdomain h domid port in
  Evtchn.unmask h channel;
  channel

let close channel = Evtchn.unbind (Evtchn.init ()) channel
