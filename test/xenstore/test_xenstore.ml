(* Vchan_rs.Xenstore.Make over Mem_xs: the rendezvous keys, their
   permissions, the transaction, the client's wait, and the clean-up, as
   ocaml-vchan's Vchan.Xenstore.Make lays them out. Server domain 3, client
   domain 5, a bystander domain 7. *)

open Lwt.Infix

let fail fmt = Printf.ksprintf failwith fmt
let port s = Result.get_ok (Vchan_rs.Port.of_string s)

module Xs3 = Mem_xs.Xs (struct let domid = 3 end)
module Xs5 = Mem_xs.Xs (struct let domid = 5 end)
module Xs7 = Mem_xs.Xs (struct let domid = 7 end)
module Xs9 = Mem_xs.Xs (struct let domid = 9 end)
module Server = Vchan_rs.Xenstore.Make (Xs3)
module Client = Vchan_rs.Xenstore.Make (Xs5)
module Bystander = Vchan_rs.Xenstore.Make (Xs7)
module Broken = Vchan_rs.Xenstore.Make (Xs9)

let settle = Mem_xs.settle
let get = Mem_xs.resolved

let pending what p =
  settle ();
  match Lwt.state p with
  | Lwt.Sleep -> ()
  | Lwt.Return _ -> fail "%s: resolved, expected it to wait" what
  | Lwt.Fail e -> fail "%s: failed (%s), expected it to wait" what (Printexc.to_string e)

let dir = "/local/domain/3/data/vchan/5/flibble"
let config = { Server.ring_ref = "8"; event_channel = "42" }
let setup () = Mem_xs.reset ~domids:[ 3; 5; 7 ]

let value_perms path =
  match Mem_xs.get path with
  | Some (v, p) -> (v, p.Mem_xs.owner, p.readers)
  | None -> fail "%s: missing" path

let vp = Alcotest.(triple string int (list int))

let test_path () =
  Alcotest.(check string)
    "ocaml-vchan's layout" dir
    (Vchan_rs.Xenstore.path ~domain_path:"/local/domain/3" ~client_domid:5
       (port "flibble"))

let test_write () =
  setup ();
  get (Server.write ~client_domid:5 ~port:(port "flibble") config);
  Alcotest.check vp "ring-ref" ("8", 3, [ 5 ]) (value_perms (dir ^ "/ring-ref"));
  Alcotest.check vp "event-channel" ("42", 3, [ 5 ])
    (value_perms (dir ^ "/event-channel"));
  Alcotest.(check (list string))
    "nothing else under the server's data"
    [ "/local/domain/3/data/vchan";
      "/local/domain/3/data/vchan/5";
      dir;
      dir ^ "/event-channel";
      dir ^ "/ring-ref" ]
    (Mem_xs.paths_under "/local/domain/3/data");
  Alcotest.(check (list (list string)))
    "both keys in one transaction"
    [ [ dir ^ "/ring-ref"; dir ^ "/event-channel" ] ]
    (Mem_xs.commits ())

let test_client_waits () =
  setup ();
  let r = Client.read ~server_domid:3 ~port:(port "flibble") in
  pending "read before the server wrote" r;
  (* Another vchan of the server changes the store: the client looks again
     and keeps waiting. *)
  get (Server.write ~client_domid:5 ~port:(port "other") config);
  pending "read after an unrelated write" r;
  get (Server.write ~client_domid:5 ~port:(port "flibble") config);
  let got = get r in
  Alcotest.(check (pair string string))
    "what the client reads" ("8", "42") (got.ring_ref, got.event_channel);
  Alcotest.(check bool) "it waited" true (Mem_xs.wait_rounds () >= 2)

let test_client_after () =
  setup ();
  get (Server.write ~client_domid:5 ~port:(port "flibble") config);
  let got = get (Client.read ~server_domid:3 ~port:(port "flibble")) in
  Alcotest.(check (pair string string))
    "read at once" ("8", "42") (got.ring_ref, got.event_channel);
  Alcotest.(check int) "no wait" 0 (Mem_xs.wait_rounds ())

let test_bystander () =
  setup ();
  get (Server.write ~client_domid:5 ~port:(port "flibble") config);
  (match get (Xs7.make () >>= fun c -> Xs7.immediate c (fun h -> Xs7.read h (dir ^ "/ring-ref"))) with
   | _ -> fail "domain 7 read the client's ring-ref"
   | exception Mem_xs.Eacces _ -> ());
  (* Domain 7 looks under its own client directory: nothing there. *)
  pending "domain 7's read"
    (Bystander.read ~server_domid:3 ~port:(port "flibble"))

let test_delete () =
  setup ();
  get (Server.write ~client_domid:5 ~port:(port "flibble") config);
  get (Server.write ~client_domid:5 ~port:(port "other") config);
  get (Server.delete ~client_domid:5 ~port:(port "flibble"));
  Alcotest.(check (list string))
    "the other port is left"
    [ "/local/domain/3/data/vchan/5";
      "/local/domain/3/data/vchan/5/other";
      "/local/domain/3/data/vchan/5/other/event-channel";
      "/local/domain/3/data/vchan/5/other/ring-ref" ]
    (Mem_xs.paths_under "/local/domain/3/data/vchan");
  get (Server.delete ~client_domid:5 ~port:(port "other"));
  Alcotest.(check (list string))
    "the client's directory is gone" [ "/local/domain/3/data/vchan" ]
    (Mem_xs.paths_under "/local/domain/3/data");
  Alcotest.(check (list string))
    "the last delete is one transaction"
    [ "/local/domain/3/data/vchan/5/other"; "/local/domain/3/data/vchan/5" ]
    (List.nth (Mem_xs.commits ()) 3)

let test_bad_domid () =
  Mem_xs.reset ~domids:[];
  Mem_xs.set_raw "/local/domain/9/domid" "nine" ~readers:[ 9 ];
  match get (Broken.write ~client_domid:5 ~port:(port "flibble") { Broken.ring_ref = "8"; event_channel = "42" }) with
  | () -> fail "wrote with domid 'nine'"
  | exception Vchan_rs.Error.Vchan (`System m) ->
      Alcotest.(check bool) "names the key" true
        (String.length m > 12 && String.sub m 0 12 = "xenstore key")

let () =
  Test_harness.run "xenstore"
    [ ( "rendezvous",
        [ ("path", test_path);
          ("server writes keys, permissions, one transaction", test_write);
          ("client waits for the server (watch)", test_client_waits);
          ("client reads a published rendezvous", test_client_after);
          ("another domain may not read it", test_bystander);
          ("delete removes the port, then the client dir", test_delete);
          ("a bad domid key is an error", test_bad_domid) ] ) ]
