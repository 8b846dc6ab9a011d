open Lwt.Infix

exception Enoent of string
exception Eacces of string

type perms = { owner : int; readers : int list }
type node = { value : string; perms : perms }

module M = Map.Make (String)

let store = ref M.empty
let changed = Lwt_condition.create ()
let committed = ref []
let rounds = ref 0

let set_raw path value ~readers =
  store := M.add path { value; perms = { owner = 0; readers } } !store

let reset ~domids =
  store := M.empty;
  committed := [];
  rounds := 0;
  List.iter
    (fun d ->
      let home = Printf.sprintf "/local/domain/%d" d in
      store :=
        !store
        |> M.add (home ^ "/domid")
             { value = string_of_int d; perms = { owner = 0; readers = [ d ] } }
        |> M.add (home ^ "/data") { value = ""; perms = { owner = d; readers = [] } })
    domids

let get path = Option.map (fun n -> (n.value, n.perms)) (M.find_opt path !store)

let is_under dir k =
  let p = dir ^ "/" in
  String.length k > String.length p && String.sub k 0 (String.length p) = p

let paths_under dir =
  M.bindings !store |> List.map fst |> List.filter (is_under dir)

let commits () = List.rev !committed
let wait_rounds () = !rounds

let rec parent p =
  match String.rindex_opt p '/' with
  | Some 0 | None -> None
  | Some i -> Some (String.sub p 0 i)

and ancestors p =
  match parent p with None -> [] | Some q -> q :: ancestors q

module Xs (D : sig
  val domid : int
end) =
struct
  type client = unit

  let make () = Lwt.return_unit

  (* [view] is the store the operations see: the shared one (immediate,
     wait) or a transaction's copy; [touched] what a transaction wrote. *)
  type handle = { tx : node M.t ref option; mutable touched : string list }

  type acl = perms

  exception Eagain

  let acl ~owner ~readers = { owner; readers }
  let view h = match h.tx with Some v -> !v | None -> !store

  let update h f =
    match h.tx with
    | Some v -> v := f !v
    | None ->
        store := f !store;
        Lwt_condition.broadcast changed ()

  let abs p =
    if String.length p > 0 && p.[0] = '/' then p
    else Printf.sprintf "/local/domain/%d/%s" D.domid p

  let may_read n =
    D.domid = 0 || n.perms.owner = D.domid || List.mem D.domid n.perms.readers

  let may_write n = D.domid = 0 || n.perms.owner = D.domid

  let find h p =
    match M.find_opt p (view h) with
    | None -> raise (Enoent p)
    | Some n when not (may_read n) -> raise (Eacces p)
    | Some n -> n

  let read h p = Lwt.wrap (fun () -> (find h (abs p)).value)

  let directory h p =
    Lwt.wrap (fun () ->
        let p = abs p in
        ignore (find h p);
        M.bindings (view h)
        |> List.filter_map (fun (k, _) ->
               if is_under p k && not (String.contains_from k (String.length p + 1) '/')
               then Some (String.sub k (String.length p + 1) (String.length k - String.length p - 1))
               else None))

  (* A new node is owned by its writer; a write must be allowed by the
     nearest existing node (itself, or an ancestor). *)
  let write h p value =
    Lwt.wrap (fun () ->
        let p = abs p in
        let v = view h in
        (match List.find_map (fun q -> M.find_opt q v) (p :: ancestors p) with
         | Some n when not (may_write n) -> raise (Eacces p)
         | _ -> ());
        let fresh = { owner = D.domid; readers = [] } in
        h.touched <- p :: h.touched;
        update h (fun v ->
            let v =
              List.fold_left
                (fun v q ->
                  if M.mem q v then v else M.add q { value = ""; perms = fresh } v)
                v (ancestors p)
            in
            let perms = match M.find_opt p v with Some n -> n.perms | None -> fresh in
            M.add p { value; perms } v))

  let rm h p =
    Lwt.wrap (fun () ->
        let p = abs p in
        let n = find h p in
        if not (may_write n) then raise (Eacces p);
        h.touched <- p :: h.touched;
        update h (M.filter (fun k _ -> k <> p && not (is_under p k))))

  let setperms h p perms =
    Lwt.wrap (fun () ->
        let p = abs p in
        let n = find h p in
        if not (may_write n) then raise (Eacces p);
        update h (M.add p { n with perms }))

  let getdomainpath _ d = Lwt.return (Printf.sprintf "/local/domain/%d" d)
  let immediate () f = f { tx = None; touched = [] }

  let rec transaction () f =
    let start = !store in
    let h = { tx = Some (ref start); touched = [] } in
    f h >>= fun r ->
    if !store != start then transaction () f
    else begin
      (match h.tx with Some v -> store := !v | None -> ());
      committed := List.rev h.touched :: !committed;
      Lwt_condition.broadcast changed ();
      Lwt.return r
    end

  let rec wait () f =
    Lwt.catch
      (fun () -> f { tx = None; touched = [] })
      (function
        | Eagain ->
            incr rounds;
            Lwt_condition.wait changed >>= fun () -> wait () f
        | e -> Lwt.fail e)
end

let settle () = while Lwt.paused_count () > 0 do Lwt.wakeup_paused () done

let resolved p =
  settle ();
  match Lwt.state p with
  | Lwt.Return x -> x
  | Lwt.Fail e -> raise e
  | Lwt.Sleep -> failwith "still waiting"
