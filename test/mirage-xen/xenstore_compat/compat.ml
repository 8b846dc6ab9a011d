(* Vchan_rs.Xenstore.Make and ocaml-vchan's Vchan.Xenstore.Make over one
   Mem_xs store: server domain 3, client domain 5. Prints one `ok:` or
   `FAILED:` line per case (scripts/test-mirage-xen.sh counts them); exits 1
   if a case failed. *)

(* ocaml-vchan's functor takes an Xs_client_lwt.S: Mem_xs's client for a
   domain, with the xenstore package's ACL and Eagain. *)
module Adapt (D : sig
  val domid : int
end) : Xs_client_lwt.S = struct
  module M = Mem_xs.Xs (D)

  type client = M.client
  type handle = M.handle

  let make = M.make
  let suspend _ = Lwt.return_unit
  let resume _ = Lwt.return_unit
  let immediate = M.immediate
  let transaction = M.transaction

  let wait c f =
    M.wait c (fun h ->
        Lwt.catch
          (fun () -> f h)
          (function Xs_protocol.Eagain -> Lwt.fail M.Eagain | e -> Lwt.fail e))

  let directory = M.directory
  let read = M.read
  let write = M.write
  let rm = M.rm
  let mkdir h p = M.write h p ""

  let setperms h p (acl : Xs_protocol.ACL.t) =
    if acl.other <> Xs_protocol.ACL.NONE then
      Lwt.fail_with "Mem_xs keeps no permission for other domains"
    else
      let readers =
        List.filter_map
          (function d, Xs_protocol.ACL.(READ | RDWR) -> Some d | _ -> None)
          acl.acl
      in
      M.setperms h p (M.acl ~owner:acl.owner ~readers)

  let getdomainpath = M.getdomainpath
  let unused what = Lwt.fail_with (what ^ ": not used by the rendezvous")
  let debug _ _ = unused "debug"
  let watch _ _ _ = unused "watch"
  let unwatch _ _ _ = unused "unwatch"
  let introduce _ _ _ _ = unused "introduce"
  let set_target _ _ _ = unused "set_target"
end

module Ref_server = Vchan.Xenstore.Make (Adapt (struct let domid = 3 end))
module Ref_client = Vchan.Xenstore.Make (Adapt (struct let domid = 5 end))
module Rs_server = Vchan_rs.Xenstore.Make (Mem_xs.Xs (struct let domid = 3 end))
module Rs_client = Vchan_rs.Xenstore.Make (Mem_xs.Xs (struct let domid = 5 end))

let settle = Mem_xs.settle
let get = Mem_xs.resolved

let ref_port = Result.get_ok (Vchan.Port.of_string "flibble")
let rs_port = Result.get_ok (Vchan_rs.Port.of_string "flibble")
let reset () = Mem_xs.reset ~domids:[ 3; 5 ]

(* What a server left: every path with its value and permissions, and the
   paths of each transaction. *)
let store () =
  ( List.map (fun p -> (p, Mem_xs.get p)) (Mem_xs.paths_under "/local"),
    Mem_xs.commits () )

let ref_write () =
  Ref_server.write ~client_domid:5 ~port:ref_port
    { Ref_server.ring_ref = "8"; event_channel = "42" }

let rs_write () =
  Rs_server.write ~client_domid:5 ~port:rs_port
    { Rs_server.ring_ref = "8"; event_channel = "42" }

let check what cond = if not cond then failwith what

let same_store_after_write () =
  reset ();
  get (ref_write ());
  let reference = store () in
  reset ();
  get (rs_write ());
  check "the stores differ" (store () = reference)

let same_store_after_delete () =
  reset ();
  get (ref_write ());
  get (Ref_server.delete ~client_domid:5 ~port:ref_port);
  let reference = store () in
  reset ();
  get (rs_write ());
  get (Rs_server.delete ~client_domid:5 ~port:rs_port);
  check "the stores differ" (store () = reference)

let rs_client_of_ref_server () =
  reset ();
  let r = Rs_client.read ~server_domid:3 ~port:rs_port in
  settle ();
  check "read before the server wrote" (Lwt.state r = Lwt.Sleep);
  get (ref_write ());
  let t = get r in
  check "what the client read" (t.ring_ref = "8" && t.event_channel = "42")

let ref_client_of_rs_server () =
  reset ();
  let r = Ref_client.read ~server_domid:3 ~port:ref_port in
  settle ();
  check "read before the server wrote" (Lwt.state r = Lwt.Sleep);
  get (rs_write ());
  let t = get r in
  check "what the client read" (t.ring_ref = "8" && t.event_channel = "42")

let () =
  let cases =
    [ ("same keys, values, permissions, transaction after write", same_store_after_write);
      ("same store after delete", same_store_after_delete);
      ("vchan-rs client waits for and reads ocaml-vchan's server", rs_client_of_ref_server);
      ("ocaml-vchan client waits for and reads vchan-rs's server", ref_client_of_rs_server) ]
  in
  let failed =
    List.fold_left
      (fun failed (name, f) ->
        match f () with
        | () ->
            Printf.printf "xenstore-compat: ok: %s\n%!" name;
            failed
        | exception e ->
            Printf.printf "xenstore-compat: FAILED: %s: %s\n%!" name (Printexc.to_string e);
            failed + 1)
      0 cases
  in
  exit (if failed = 0 then 0 else 1)
