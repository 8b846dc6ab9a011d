open Lwt.Infix
module F = Freestanding

module type SPIN = sig
  type t

  val create : unit -> t
  val spin : t -> (unit -> bool) -> bool
  val woke : t -> unit
end

module No_spin = struct
  type t = unit

  let create () = ()
  let spin () _ = false
  let woke () = ()
end

module Make_with (W : SPIN) (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) = struct
  type port = Port.t
  type error = Error.t
  type write_error = Error.t

  let pp_error = Error.pp
  let pp_write_error = Error.pp

  (* What close gives back. *)
  type memory =
    | Shared of { page : M.share; rings : M.share list }
    | Mapped of { page : M.mapping; rings : M.mapping list }

  type t = {
    st : F.buffer;  (** The Rust endpoint (F.state_size bytes). *)
    memory : memory;
        (** Keeps the page and the rings reachable while the core uses them. *)
    read_buf : F.buffer;  (** Holds the read ring at [read_off]. *)
    read_off : int;
    evtchn : E.channel;
    mutable token : E.event;  (** The newest event seen. *)
    mutable wakeup : (unit Lwt.t * unit Lwt.u) option;
        (** While someone waits: resolved by the next event, or by close.
            One [E.recv] serves every waiter. *)
    mutable pending : int;
        (** Length of the last view [read] returned, consumed by the next. *)
    mutable closed : bool;
    mutable read_shut : bool;
    spin : W.t;  (** The spin phase's state (see {!SPIN}). *)
    domid : int;
    port : Port.t;
  }

  type flow = t

  let fail e = Lwt.fail (Error.Vchan e)

  (* A result of the core: a count, or a failure. *)
  let checked n = if n < 0 then Error (F.error_of_code n) else Ok n

  let or_fail n =
    match checked n with Ok n -> n | Error e -> raise (Error.Vchan e)

  let fresh_state () =
    let st = Bigarray.(Array1.create char c_layout F.state_size) in
    Bigarray.Array1.fill st '\000';
    st

  let int32s l =
    Bigarray.(Array1.of_array int32 c_layout (Array.of_list l))

  let left_order o = o land 0xff
  let right_order o = (o lsr 8) land 0xff

  let make ~st ~memory ~read_buf ~read_off ~evtchn ~domid ~port =
    {
      st;
      memory;
      read_buf;
      read_off;
      evtchn;
      token = E.initial;
      wakeup = None;
      pending = 0;
      closed = false;
      read_shut = false;
      spin = W.create ();
      domid;
      port;
    }

  (* Wake every waiter (they retry). *)
  let wake t outcome =
    match t.wakeup with
    | None -> ()
    | Some (_, u) ->
        t.wakeup <- None;
        Lwt.wakeup_later_result u outcome

  (* Wait for an event newer than [tok] (taken before the last look, so
     that one arriving since is not missed), or for close. Without
     [Lwt.pick] against a close promise: that registered and removed two
     callbacks per wait, most of a one-process round trip. *)
  let wait t tok =
    if t.closed || tok != t.token then Lwt.return_unit
    else
      match t.wakeup with
      | Some (p, _) -> p
      | None ->
          let ((p, _) as w) = Lwt.wait () in
          t.wakeup <- Some w;
          Lwt.on_any (E.recv t.evtchn tok)
            (fun ev ->
              t.token <- ev;
              wake t (Ok ()))
            (fun e -> wake t (Error e));
          p

  let notify t r = if r land 1 = 1 then E.send t.evtchn

  (* Set-up acquires pages, an event channel and the rendezvous in turn;
     when a step fails (an exception, synchronous or not, or a client that
     breaks the protocol), what was acquired is given back, newest first,
     and the first failure is the one reported. *)
  let server ~domid ~port ?(read_size = 1024) ?(write_size = 1024) () =
    let shares = ref [] and channel = ref None and published = ref false in
    let give_back () =
      let quietly f = Lwt.catch f (fun _ -> Lwt.return_unit) in
      (match !channel with Some ch -> E.close ch | None -> ());
      (if !published then quietly (fun () -> C.delete ~client_domid:domid ~port)
       else Lwt.return_unit)
      >>= fun () -> Lwt_list.iter_s (fun s -> quietly (fun () -> M.unshare s)) !shares
    in
    let share npages =
      let s = M.share ~domid ~npages ~rw:true in
      shares := s :: !shares;
      s
    in
    let set_up () =
      let orders = or_fail (F.server_orders read_size write_size) in
      let page_share = share 1 in
      let page = M.buf_of_share page_share in
      let ring order =
        match or_fail (F.ring_pages order) with
        | 0 -> None
        | npages -> Some (share npages)
      in
      let left = ring (left_order orders) in
      let right = ring (right_order orders) in
      let grants = function
        | None -> []
        | Some s -> List.map M.int32_of_grant (M.grants_of_share s)
      in
      let buf = function None -> page | Some s -> M.buf_of_share s in
      let st = fresh_state () in
      ignore (or_fail (F.server_init page orders (int32s (grants left @ grants right))));
      ignore (or_fail (F.attach st page orders (buf left) (buf right)));
      let eport, evtchn = E.listen domid in
      channel := Some evtchn;
      let ring_ref =
        match M.grants_of_share page_share with
        | g :: _ -> Int32.to_string (M.int32_of_grant g)
        | [] -> invalid_arg "MEMORY.share returned no grant"
      in
      let memory =
        Shared { page = page_share; rings = List.filter_map Fun.id [ left; right ] }
      in
      let t =
        make ~st ~memory ~read_buf:(buf left)
          ~read_off:(F.ring_offset (left_order orders))
          ~evtchn ~domid ~port
      in
      published := true;
      C.write ~client_domid:domid ~port
        { C.ring_ref; event_channel = E.string_of_port eport }
      >>= fun () ->
      let rec connected () =
        let tok = t.token in
        let s = F.state st in
        if s = F.state_waiting then wait t tok >>= connected
        else if s < 0 then fail (F.error_of_code s)
        else Lwt.return t
      in
      connected ()
    in
    Lwt.catch set_up (fun e -> give_back () >>= fun () -> Lwt.fail e)

  let client ~domid ~port () =
    C.read ~server_domid:domid ~port >>= fun { C.ring_ref; event_channel } ->
    match (E.port_of_string event_channel, Int32.of_string_opt ring_ref) with
    | Error (`Msg m), _ -> fail (`Invalid_argument ("vchan event channel: " ^ m))
    | _, None -> fail (`Invalid_argument ("vchan ring-ref: " ^ ring_ref))
    | Ok eport, Some gref -> (
        let page_map = M.map ~domid ~grant:(M.grant_of_int32 gref) ~rw:true in
        let page = M.buf_of_mapping page_map in
        let rings = ref [] in
        let give_back () =
          List.iter M.unmap !rings;
          M.unmap page_map
        in
        match
          (* The orders and grant refs are read once, here, and validated. *)
          let orders = or_fail (F.client_orders page) in
          let nl = or_fail (F.ring_pages (left_order orders)) in
          let nr = or_fail (F.ring_pages (right_order orders)) in
          let refs = Bigarray.(Array1.create int32 c_layout (nl + nr)) in
          ignore (or_fail (F.client_grants page orders refs));
          let ring first n ~rw =
            if n = 0 then None
            else
              let grants =
                List.init n (fun i -> (domid, M.grant_of_int32 refs.{first + i}))
              in
              let m = M.mapv ~grants ~rw in
              rings := m :: !rings;
              Some m
          in
          (* We write the left ring and only read the right one. *)
          let left = ring 0 nl ~rw:true and right = ring nl nr ~rw:false in
          let buf = function None -> page | Some m -> M.buf_of_mapping m in
          let st = fresh_state () in
          let evtchn = E.connect domid eport in
          match F.attach st page (orders lor F.client_flag) (buf left) (buf right) with
          | r when r < 0 ->
              E.close evtchn;
              raise (Error.Vchan (F.error_of_code r))
          | r ->
              let memory = Mapped { page = page_map; rings = !rings } in
              let t =
                make ~st ~memory ~read_buf:(buf right)
                  ~read_off:(F.ring_offset (right_order orders))
                  ~evtchn ~domid ~port
              in
              notify t r;
              t
        with
        | t -> Lwt.return t
        | exception e ->
            give_back ();
            Lwt.fail e)

  (* Acknowledge the view [read] returned last. *)
  let ack t =
    if t.pending = 0 then Ok ()
    else begin
      let r = F.consume t.st t.pending in
      t.pending <- 0;
      if r = F.e_closed then Ok ()
      else if r < 0 then Error (F.error_of_code r)
      else Ok (notify t r)
    end

  let close t =
    if t.closed then Lwt.return_unit
    else begin
      (* The view [read] returned last is done with: acknowledge it, so
         that the peer sees everything it sent read (a sender may wait for
         that before it takes our close as the end of the stream). *)
      ignore (ack t : (unit, _) result);
      t.closed <- true;
      (* From here the core never touches the memory again. *)
      if F.close t.st = 1 then E.send t.evtchn;
      wake t (Ok ());
      match t.memory with
      | Mapped { page; rings } ->
          List.iter M.unmap rings;
          M.unmap page;
          E.close t.evtchn;
          Lwt.return_unit
      | Shared { page; rings } ->
          C.delete ~client_domid:t.domid ~port:t.port >>= fun () ->
          Lwt_list.iter_s M.unshare rings >>= fun () ->
          M.unshare page >|= fun () -> E.close t.evtchn
    end

  let shutdown t = function
    | `read ->
        t.read_shut <- true;
        Lwt.return_unit
    | `write | `read_write -> close t

  let eof = Lwt.return (Ok `Eof)

  let view t r =
    let off = r lsr 32 and len = r land 0xffff_ffff in
    t.pending <- len;
    Lwt.return (Ok (`Data (Cstruct.of_bigarray ~off:(t.read_off + off) ~len t.read_buf)))

  let rec next t =
    let tok = t.token in
    let r = F.peek t.st in
    if r = F.e_closed then eof
    else if r < 0 then Lwt.return (Error (F.error_of_code r))
    else if r land 0xffff_ffff > 0 then view t r
    else
      let s = F.state t.st in
      if s = F.state_exited then
        (* Everything the peer wrote before closing is visible now. *)
        let r = F.peek t.st in
        if r > 0 && r land 0xffff_ffff > 0 then view t r else eof
      else if s < 0 then Lwt.return (Error (F.error_of_code s))
      else if W.spin t.spin (fun () -> F.data_ready t.st <> 0) then next t
      else if F.data_ready_or_arm t.st 1 <> 0 then next t
      else
        wait t tok >>= fun () ->
        W.woke t.spin;
        next t

  let read t =
    if t.closed || t.read_shut then eof
    else match ack t with Error e -> Lwt.return (Error e) | Ok () -> next t

  let closed = Lwt.return (Error `Closed)

  let write t (buf : Cstruct.t) =
    let rec go off len =
      if len = 0 then Lwt.return (Ok ())
      else if t.closed then closed
      else
        let tok = t.token in
        let s = F.state t.st in
        if s <> F.state_connected then
          if s < 0 && s <> F.e_closed then Lwt.return (Error (F.error_of_code s))
          else closed
        else
          let r = F.write t.st buf.buffer off len in
          if r < 0 then Lwt.return (Error (F.error_of_code r))
          else begin
            notify t r;
            let n = r lsr 1 in
            if n > 0 then go (off + n) (len - n)
            else if W.spin t.spin (fun () -> F.buffer_space t.st <> 0) then go off len
            else if F.buffer_space_or_arm t.st 1 <> 0 then go off len
            else
              wait t tok >>= fun () ->
              W.woke t.spin;
              go off len
          end
    in
    go buf.off buf.len

  let rec writev t = function
    | [] -> Lwt.return (Ok ())
    | b :: bs -> (
        write t b >>= function Ok () -> writev t bs | Error _ as e -> Lwt.return e)
end

module Make = Make_with (No_spin)
