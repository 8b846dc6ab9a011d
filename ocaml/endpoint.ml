open Lwt.Infix
module F = Freestanding

type state = Waiting | Connected | Exited

exception Stale

module type S = Endpoint_intf.S with type state := state
module type PLATFORM = Endpoint_intf.PLATFORM

module Make_with (P : PLATFORM) = struct
  module E = P.E
  module M = P.M
  module C = P.C

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
    write_buf : F.buffer;  (** Holds the write ring at [write_off]. *)
    write_off : int;
    write_size : int;
    evtchn : E.channel;
    mutable token : E.event;  (** The newest event seen. *)
    mutable sleepers : (unit Lwt.t * unit Lwt.u) list;
        (** Who waits for the next event (or close), newest first. *)
    mutable receiving : bool;  (** An [E.recv] for them is pending. *)
    mutable pending : int;
        (** Length of the last view [read] returned, consumed by the next. *)
    mutable closed : bool;
    mutable read_shut : bool;
    mutable woken : bool;  (** A wait ended since the last progress. *)
    mutable spun : bool;  (** The current wait followed a failed spin. *)
    mutable polled : int;  (** What the last look of a spin found, less what it wanted. *)
    mutable gone : bool;  (** The platform saw the peer die. *)
    mutable vanished : bool;  (** ... before it closed. *)
    spin : P.spin;
    domid : int;
    port : Port.t;
  }

  type flow = t

  let fail e = Lwt.fail (Error.Vchan e)

  let or_fail n = if n < 0 then raise (Error.Vchan (F.error_of_code n)) else n

  let fresh_state () =
    let st = Bigarray.(Array1.create char c_layout F.state_size) in
    Bigarray.Array1.fill st '\000';
    st

  let int32s l = Bigarray.(Array1.of_array int32 c_layout (Array.of_list l))
  let left_order o = o land 0xff
  let right_order o = (o lsr 8) land 0xff

  let make ~st ~memory ~read_buf ~read_order ~write_buf ~write_order ~evtchn ~domid
      ~port =
    {
      st;
      memory;
      read_buf;
      read_off = F.ring_offset read_order;
      write_buf;
      write_off = F.ring_offset write_order;
      write_size = 1 lsl write_order;
      evtchn;
      token = E.initial;
      sleepers = [];
      receiving = false;
      pending = 0;
      closed = false;
      read_shut = false;
      woken = false;
      spun = false;
      polled = 0;
      gone = false;
      vanished = false;
      spin = P.spin ();
      domid;
      port;
    }

  let is_server t = match t.memory with Shared _ -> true | Mapped _ -> false

  (* The platform saw the peer die: mark it exited in the page (once). *)
  let absorb t =
    if (not t.gone) && P.peer_gone t.evtchn then begin
      t.gone <- true;
      if F.peer_gone t.st = 1 then t.vanished <- true
    end

  (* Wake every waiter, in the order they began to wait (they retry). *)
  let wake t outcome =
    let sleepers = List.rev t.sleepers in
    t.sleepers <- [];
    List.iter
      (fun (p, u) -> if Lwt.state p = Lwt.Sleep then Lwt.wakeup_later_result u outcome)
      sleepers

  (* Wait for an event newer than [tok] (taken before the last look, so
     that one arriving since is not missed), or for close. One [E.recv]
     serves every waiter; each waiter may be cancelled (a [Lwt.pick] that
     lost) without disturbing the others. Without [Lwt.pick] against a
     close promise: that registered and removed two callbacks per wait,
     most of a one-process round trip. *)
  let wait t tok =
    if t.closed || tok != t.token then Lwt.return_unit
    else begin
      let ((p, _) as w) = Lwt.task () in
      t.sleepers <- w :: t.sleepers;
      if not t.receiving then begin
        t.receiving <- true;
        Lwt.on_any (E.recv t.evtchn tok)
          (fun ev ->
            t.receiving <- false;
            t.token <- ev;
            t.woken <- true;
            if t.spun then begin
              t.spun <- false;
              P.woke t.spin
            end;
            absorb t;
            wake t (Ok ()))
          (fun e ->
            t.receiving <- false;
            wake t (Error e))
      end;
      p
    end

  (* Wait until [arm ()] (ask the peer for a notification and look again)
     says the operation may progress, or an event comes. A wait that
     brought nothing lets the platform consume its events first (see
     [PLATFORM.stalled]); if that shows the peer dead, look again. *)
  let await t ~arm =
    let gone = t.gone in
    if t.woken then begin
      t.woken <- false;
      P.stalled t.evtchn;
      absorb t
    end;
    let tok = t.token in
    if t.gone <> gone || arm () then begin
      (* No wait after all: a later wake-up must not time a spin from here. *)
      t.spun <- false;
      Lwt.return_unit
    end
    else wait t tok

  (* Spin until [poll ()] (bytes found less bytes wanted, left in
     [t.polled]) is not negative, or the peer's state changes; not right
     after a wake-up that brought nothing (a flood of notifications gets no
     spin). *)
  let spun t poll =
    if t.woken then false
    else if
      P.spin_until t.spin (fun () ->
          let n = poll () in
          t.polled <- n;
          n >= 0 || F.state t.st <> F.state_connected)
    then true
    else begin
      t.spun <- true;
      false
    end

  let notify t r = if r land 1 = 1 then E.send t.evtchn

  let peer_state t =
    let s = F.state t.st in
    if s = F.state_waiting then Ok Waiting
    else if s = F.state_connected then Ok Connected
    else if s = F.state_exited || s = F.e_closed then Ok Exited
    else Error (F.error_of_code s)

  let state t =
    if t.closed then Exited
    else begin
      absorb t;
      match peer_state t with Ok s -> s | Error _ -> Exited
    end

  let peer_vanished t =
    if not t.closed then absorb t;
    t.vanished

  (* Set-up acquires an event channel, pages and the rendezvous in turn;
     when a step fails (an exception, synchronous or not, or a client that
     breaks the protocol), what was acquired is given back, newest first,
     and the first failure is the one reported. *)
  let listen ~domid ~port ?(read_size = 1024) ?(write_size = 1024) () =
    let shares = ref [] and channel = ref None and published = ref false in
    let give_back () =
      let quietly f = Lwt.catch f (fun _ -> Lwt.return_unit) in
      (if !published then quietly (fun () -> C.delete ~client_domid:domid ~port)
       else Lwt.return_unit)
      >>= fun () ->
      Lwt_list.iter_s (fun s -> quietly (fun () -> M.unshare s)) !shares >|= fun () ->
      match !channel with Some ch -> E.close ch | None -> ()
    in
    let set_up () =
      let orders = or_fail (F.server_orders read_size write_size) in
      let eport, evtchn = E.listen domid in
      channel := Some evtchn;
      let page_share = P.share_page evtchn ~domid ~own_live:F.server_live in
      shares := [ page_share ];
      let page = M.buf_of_share page_share in
      let ring order =
        match or_fail (F.ring_pages order) with
        | 0 -> None
        | npages ->
            let s = M.share ~domid ~npages ~rw:true in
            shares := s :: !shares;
            Some s
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
      let ring_ref =
        match M.grants_of_share page_share with
        | g :: _ -> Int32.to_string (M.int32_of_grant g)
        | [] -> invalid_arg "MEMORY.share returned no grant"
      in
      let memory =
        Shared { page = page_share; rings = List.filter_map Fun.id [ left; right ] }
      in
      let t =
        make ~st ~memory ~read_buf:(buf left) ~read_order:(left_order orders)
          ~write_buf:(buf right) ~write_order:(right_order orders) ~evtchn ~domid ~port
      in
      published := true;
      C.write ~client_domid:domid ~port
        { C.ring_ref; event_channel = E.string_of_port eport }
      >|= fun () -> t
    in
    Lwt.catch set_up (fun e -> give_back () >>= fun () -> Lwt.fail e)

  let accept t =
    let rec connected () =
      if t.closed then Lwt.return_unit
      else
        let tok = t.token in
        absorb t;
        match peer_state t with
        | Ok Waiting -> wait t tok >>= connected
        | Ok (Connected | Exited) -> Lwt.return_unit
        | Error e -> fail e
    in
    if is_server t then connected () else Lwt.return_unit

  let client ~domid ~port () =
    C.read ~server_domid:domid ~port >>= fun { C.ring_ref; event_channel } ->
    match (E.port_of_string event_channel, Int32.of_string_opt ring_ref) with
    | Error (`Msg m), _ -> fail (`Invalid_argument ("vchan event channel: " ^ m))
    | _, None -> fail (`Invalid_argument ("vchan ring-ref: " ^ ring_ref))
    | Ok eport, Some gref -> (
        (* A rendezvous whose server exited (a killed server's, not yet
           replaced) is refused before anything is bound: its event channel
           port may already be a new server's, which binding it would take. *)
        let grant = M.grant_of_int32 gref in
        let probe = M.map ~domid ~grant ~rw:false in
        let exited = Bigarray.Array1.get (M.buf_of_mapping probe) F.server_live = '\000' in
        M.unmap probe;
        if exited then raise Stale;
        let evtchn = E.connect domid eport in
        let maps = ref [] in
        let give_back () =
          List.iter M.unmap !maps;
          E.close evtchn
        in
        match
          let page_map =
            P.map_page evtchn ~domid ~grant ~own_live:F.client_live
          in
          maps := [ page_map ];
          let page = M.buf_of_mapping page_map in
          let server_exited () = Bigarray.Array1.get page F.server_live = '\000' in
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
              (* A killed server's rings may no longer map while its page
                 still does. *)
              match M.mapv ~grants ~rw with
              | m ->
                  maps := m :: !maps;
                  Some m
              | exception _ when server_exited () -> raise Stale
          in
          (* We write the left ring and only read the right one. *)
          let left = ring 0 nl ~rw:true and right = ring nl nr ~rw:false in
          let buf = function None -> page | Some m -> M.buf_of_mapping m in
          let st = fresh_state () in
          let r = or_fail (F.attach st page (orders lor F.client_flag) (buf left) (buf right)) in
          if F.state st = F.state_exited then begin
            ignore (F.close st : int);
            raise Stale
          end;
          let memory = Mapped { page = page_map; rings = List.filter (( != ) page_map) !maps } in
          let t =
            make ~st ~memory ~read_buf:(buf right) ~read_order:(right_order orders)
              ~write_buf:(buf left) ~write_order:(left_order orders) ~evtchn ~domid ~port
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
          Lwt.finalize
            (fun () ->
              C.delete ~client_domid:t.domid ~port:t.port >>= fun () ->
              Lwt_list.iter_s M.unshare rings >>= fun () -> M.unshare page)
            (fun () ->
              E.close t.evtchn;
              Lwt.return_unit)
    end

  let server ~domid ~port ?read_size ?write_size () =
    listen ~domid ~port ?read_size ?write_size () >>= fun t ->
    Lwt.catch
      (fun () -> accept t >|= fun () -> t)
      (fun e ->
        (* A client that broke the protocol: give everything back. *)
        close t >>= fun () -> Lwt.fail e)

  let shutdown t = function
    | `read ->
        t.read_shut <- true;
        Lwt.return_unit
    | `write | `read_write -> close t

  let eof = Lwt.return (Ok `Eof)
  let closed = Lwt.return (Error `Closed)

  (* Nothing to read now: the end of the stream once the peer exited
     (everything it wrote before is visible then: [again ()] looks once
     more), else wait for [want] bytes and [again ()]. *)
  let read_miss t ~want again =
    if spun t (fun () -> F.poll_data t.st want 32 - want) && t.polled >= 0
    then again ~last:false
    else begin
      absorb t;
      match peer_state t with
      | Error e -> Lwt.return (Error e)
      | Ok Exited -> again ~last:true
      | Ok (Waiting | Connected) ->
          await t ~arm:(fun () -> F.data_ready_or_arm t.st want >= want) >>= fun () ->
          again ~last:false
    end

  let view t r =
    let off = r lsr 32 and len = r land 0xffff_ffff in
    t.pending <- len;
    t.woken <- false;
    Lwt.return (Ok (`Data (Cstruct.of_bigarray ~off:(t.read_off + off) ~len t.read_buf)))

  let rec next t ~last =
    if t.closed || t.read_shut then eof
    else
      let r = F.peek t.st in
      if r > 0 && r land 0xffff_ffff > 0 then view t r
      else if r = F.e_closed then eof
      else if r < 0 then Lwt.return (Error (F.error_of_code r))
      else if last then eof
      else read_miss t ~want:1 (next t)

  let read t =
    if t.closed || t.read_shut then eof
    else match ack t with Error e -> Lwt.return (Error e) | Ok () -> next t ~last:false

  (* A copy out of the read ring: [op] is F.read or F.recv, which wants
     [want] bytes; [k n] the result for [n] bytes. *)
  let copy_out t op ~want (buf : Cstruct.t) k =
    let rec go ~last =
      if t.closed || t.read_shut then eof
      else
        let r = op t.st buf.buffer buf.off buf.len in
        if r >= 2 || (r >= 0 && buf.len = 0) then begin
          notify t r;
          t.woken <- false;
          Lwt.return (Ok (`Data (k (r lsr 1))))
        end
        else if r = F.e_closed then eof
        else if r < 0 then Lwt.return (Error (F.error_of_code r))
        else if last then eof
        else read_miss t ~want go
    in
    if t.closed || t.read_shut then eof
    else match ack t with Error e -> Lwt.return (Error e) | Ok () -> go ~last:false

  let read_into t buf = copy_out t F.read ~want:1 buf (fun n -> n)
  let recv t (buf : Cstruct.t) = copy_out t F.recv ~want:(max 1 buf.len) buf (fun _ -> ())

  (* No room now for [want] bytes: [Error `Closed] once the peer exited,
     else wait until there is and [again ()]. *)
  let write_miss t ~want again =
    absorb t;
    match peer_state t with
    | Error e -> Lwt.return (Error e)
    | Ok Exited -> closed
    | Ok Waiting ->
        (* A server's client has not connected yet: wait for it. *)
        await t ~arm:(fun () -> false) >>= again
    | Ok Connected ->
        if spun t (fun () -> F.poll_space t.st want 32 - want) then again ()
        else await t ~arm:(fun () -> F.buffer_space_or_arm t.st want >= want) >>= again

  (* A write's result: bytes lsl 1 lor notify, or a code. *)
  let failed r = if r = F.e_closed then closed else Lwt.return (Error (F.error_of_code r))

  let write t (buf : Cstruct.t) =
    let rec go off len =
      if len = 0 then Lwt.return (Ok ())
      else if t.closed then closed
      else
        (* Writing into a ring the peer exited from is refused. *)
        let s = F.state t.st in
        if s <> F.state_connected then write_miss t ~want:1 (fun () -> go off len)
        else
          let r = F.write t.st buf.buffer off len in
          if r < 0 then failed r
          else begin
            notify t r;
            let n = r lsr 1 in
            if n > 0 then begin
              t.woken <- false;
              go (off + n) (len - n)
            end
            else write_miss t ~want:1 (fun () -> go off len)
          end
    in
    go buf.off buf.len

  (* A packet larger than the ring fails at the first attempt (F.send's
     [e_too_large]). *)
  let send t (buf : Cstruct.t) =
    let rec go () =
      if t.closed then closed
      else if F.state t.st <> F.state_connected then write_miss t ~want:(max 1 buf.len) go
      else
        let r = F.send t.st buf.buffer buf.off buf.len in
        if r < 0 then failed r
        else if r >= 2 || buf.len = 0 then begin
          notify t r;
          t.woken <- false;
          Lwt.return (Ok ())
        end
        else write_miss t ~want:(max 1 buf.len) go
    in
    go ()

  let fill t f =
    let want = max 1 (t.write_size / 2) in
    let rec go () =
      if t.closed then closed
      else if F.state t.st <> F.state_connected || F.buffer_space t.st < want then
        write_miss t ~want go
      else
        let r = F.free_span t.st in
        if r < 0 then failed r
        else
          let off = r lsr 32 and len = r land 0xffff_ffff in
          let n = f (Cstruct.of_bigarray ~off:(t.write_off + off) ~len t.write_buf) in
          let p = F.produce t.st (max 0 (min n len)) in
          if p < 0 then failed p
          else begin
            notify t p;
            t.woken <- false;
            Lwt.return (Ok n)
          end
    in
    go ()

  let linger t =
    let rec go () =
      if t.closed then closed
      else
        let tok = t.token in
        let space = F.buffer_space_or_arm t.st t.write_size in
        if space = t.write_size then Lwt.return (Ok ())
        else if space < 0 && space <> F.e_closed then Lwt.return (Error (F.error_of_code space))
        else begin
          absorb t;
          match peer_state t with
          | Ok Exited | Error _ ->
              (* It may have read the rest, then closed, since we looked. *)
              if F.buffer_space t.st = t.write_size then Lwt.return (Ok ()) else closed
          | Ok (Waiting | Connected) -> wait t tok >>= go
        end
    in
    go ()

  let rec writev t = function
    | [] -> Lwt.return (Ok ())
    | b :: bs -> (
        write t b >>= function Ok () -> writev t bs | Error _ as e -> Lwt.return e)

  let data_ready t =
    if t.closed then 0
    else
      (* Bytes of the current view are still counted by the ring. *)
      let n = F.data_ready t.st in
      if n < 0 then 0 else n - t.pending

  let buffer_space t =
    if t.closed then 0
    else
      let n = F.buffer_space t.st in
      if n < 0 then 0 else n
end

module Make (E : S.EVENTS) (M : S.MEMORY) (C : S.CONFIGURATION) = Make_with (struct
  module E = E
  module M = M
  module C = C

  let share_page _ ~domid ~own_live:_ = M.share ~domid ~npages:1 ~rw:true
  let map_page _ ~domid ~grant ~own_live:_ = M.map ~domid ~grant ~rw:true
  let peer_gone _ = false

  type spin = unit

  let spin () = ()
  let spin_until () _ = false
  let woke () = ()
  let stalled _ = ()
end)
