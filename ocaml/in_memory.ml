module Config = struct
  type t = { ring_ref : string; event_channel : string }

  let published : (Port.t, t) Hashtbl.t = Hashtbl.create 8
  let changed = Lwt_condition.create ()

  let write ~client_domid:_ ~port t =
    Hashtbl.replace published port t;
    Lwt_condition.broadcast changed ();
    Lwt.return_unit

  let rec read ~server_domid ~port =
    match Hashtbl.find_opt published port with
    | Some t -> Lwt.return t
    | None ->
        Lwt.bind (Lwt_condition.wait changed) (fun () -> read ~server_domid ~port)

  let delete ~client_domid:_ ~port =
    Hashtbl.remove published port;
    Lwt.return_unit

  let assert_cleaned_up () =
    if Hashtbl.length published > 0 then
      failwith
        (Printf.sprintf "In_memory: %d rendezvous still published"
           (Hashtbl.length published))
end

module Memory = struct
  type grant = int32

  let grant_of_int32 g = g
  let int32_of_grant g = g
  let page_size = 4096

  type share = { grants : grant list; buf : S.page }

  let grants_of_share s = s.grants
  let buf_of_share s = s.buf

  (* Every shared page: grant -> (its share's memory, page index). *)
  let pages : (grant, S.page * int) Hashtbl.t = Hashtbl.create 64

  (* First grant of each live share. *)
  let shares : (grant, unit) Hashtbl.t = Hashtbl.create 8

  (* First grant of each live mapping. *)
  let mapped : (grant, unit) Hashtbl.t = Hashtbl.create 8
  let next = ref 1l

  let share ~domid:_ ~npages ~rw:_ =
    if npages < 1 then invalid_arg "In_memory.Memory.share";
    let buf = Bigarray.(Array1.create char c_layout (npages * page_size)) in
    Bigarray.Array1.fill buf '\000';
    let grants =
      List.init npages (fun i ->
          let g = !next in
          next := Int32.succ !next;
          Hashtbl.replace pages g (buf, i);
          g)
    in
    Hashtbl.replace shares (List.hd grants) ();
    { grants; buf }

  let unshare s =
    let first = List.hd s.grants in
    if not (Hashtbl.mem shares first) then failwith "In_memory: unshare of a share not shared";
    Hashtbl.remove shares first;
    List.iter (Hashtbl.remove pages) s.grants;
    Lwt.return_unit

  type mapping = { first : grant; view : S.page }

  let buf_of_mapping m = m.view

  let find g =
    match Hashtbl.find_opt pages g with
    | Some p -> p
    | None -> failwith (Printf.sprintf "In_memory: grant %ld is not shared" g)

  let mapv ~grants ~rw:_ =
    match grants with
    | [] -> invalid_arg "In_memory.Memory.mapv: no grants"
    | (_, first) :: _ ->
        if Hashtbl.mem mapped first then
          failwith (Printf.sprintf "In_memory: grant %ld is already mapped" first);
        let buf, index = find first in
        (* Pages of one share, in order: a view of its memory. *)
        List.iteri
          (fun i (_, g) ->
            match find g with
            | b, j when b == buf && j = index + i -> ()
            | _ -> failwith "In_memory: mapv of pages that are not one run of one share")
          grants;
        Hashtbl.replace mapped first ();
        let len = List.length grants * page_size in
        { first; view = Bigarray.Array1.sub buf (index * page_size) len }

  let map ~domid ~grant ~rw = mapv ~grants:[ (domid, grant) ] ~rw

  let unmap m =
    if not (Hashtbl.mem mapped m.first) then failwith "In_memory: unmap of a mapping not mapped";
    Hashtbl.remove mapped m.first

  let assert_cleaned_up () =
    if Hashtbl.length mapped > 0 then
      failwith (Printf.sprintf "In_memory: %d mapping(s) still mapped" (Hashtbl.length mapped));
    if Hashtbl.length shares > 0 then
      failwith (Printf.sprintf "In_memory: %d share(s) still shared" (Hashtbl.length shares))
end

include Endpoint.Make (In_memory_events) (Memory) (Config)

let assert_cleaned_up () =
  Memory.assert_cleaned_up ();
  Config.assert_cleaned_up ();
  In_memory_events.assert_cleaned_up ()
