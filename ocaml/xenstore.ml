open Lwt.Infix

module type XS = sig
  type client

  val make : unit -> client Lwt.t

  type handle

  val immediate : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  val transaction : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  val wait : client -> (handle -> 'a Lwt.t) -> 'a Lwt.t
  val directory : handle -> string -> string list Lwt.t
  val read : handle -> string -> string Lwt.t
  val write : handle -> string -> string -> unit Lwt.t
  val rm : handle -> string -> unit Lwt.t
  val getdomainpath : handle -> int -> string Lwt.t

  type acl

  val acl : owner:int -> readers:int list -> acl
  val setperms : handle -> string -> acl -> unit Lwt.t

  exception Eagain
end

let client_dir ~domain_path ~client_domid =
  Printf.sprintf "%s/data/vchan/%d" domain_path client_domid

let path ~domain_path ~client_domid port =
  client_dir ~domain_path ~client_domid ^ "/" ^ Port.to_string port

module Make (Xs : XS) = struct
  type t = { ring_ref : string; event_channel : string }

  (* This domain's id and the store connection. The key is the toolstack's,
     but a bad value is still reported, not raised as int_of_string's
     Failure. *)
  let own_domid () =
    Xs.make () >>= fun c ->
    Xs.immediate c (fun h -> Xs.read h "domid") >>= fun s ->
    match Domid.of_string (String.trim s) with
    | Ok d -> Lwt.return (c, d)
    | Error (`Msg m) ->
        Lwt.fail (Error.Vchan (`System ("xenstore key domid: " ^ m)))

  (* This domain (the server's) and its domain path. *)
  let server_domain () =
    own_domid () >>= fun (c, server) ->
    Xs.immediate c (fun h -> Xs.getdomainpath h server)
    >|= fun domain_path -> (c, server, domain_path)

  let write ~client_domid ~port t =
    server_domain () >>= fun (c, server, domain_path) ->
    let dir = path ~domain_path ~client_domid port in
    let acl = Xs.acl ~owner:server ~readers:[ client_domid ] in
    Xs.transaction c (fun h ->
        Lwt_list.iter_s
          (fun (key, value) ->
            Xs.write h key value >>= fun () -> Xs.setperms h key acl)
          [ (dir ^ "/ring-ref", t.ring_ref);
            (dir ^ "/event-channel", t.event_channel) ])

  let read ~server_domid ~port =
    own_domid () >>= fun (c, client) ->
    Xs.immediate c (fun h -> Xs.getdomainpath h server_domid)
    >>= fun domain_path ->
    let dir = path ~domain_path ~client_domid:client port in
    Xs.wait c (fun h ->
        (* Missing or not yet readable: wait for a change of the paths
           read. *)
        Lwt.catch
          (fun () ->
            Xs.read h (dir ^ "/ring-ref") >>= fun ring_ref ->
            Xs.read h (dir ^ "/event-channel") >|= fun event_channel ->
            { ring_ref; event_channel })
          (fun _ -> Lwt.fail Xs.Eagain))

  let delete ~client_domid ~port =
    server_domain () >>= fun (c, _, domain_path) ->
    let dir = path ~domain_path ~client_domid port in
    let parent = client_dir ~domain_path ~client_domid in
    Xs.transaction c (fun h ->
        Xs.rm h dir >>= fun () ->
        Xs.directory h parent >>= function
        | [] -> Xs.rm h parent
        | _ -> Lwt.return_unit)
end
