(* An epoll-based Lwt engine; see engine.mli for its contract. *)

let fd_int (fd : Unix.file_descr) : int = Obj.magic fd

let check_errno what rc =
  if rc < 0 then raise (Unix.Unix_error (Stubs.unix_error_of_errno (-rc), what, ""))

(* A callback waiting on a descriptor. [live] is cleared when it is
   stopped, so that a dispatch in progress skips it. *)
type watcher = { mutable f : unit -> unit; mutable live : bool }

(* The watchers of one descriptor and what is registered in the epoll set
   for it ([mask], 0: nothing). [unpollable]: epoll refused the descriptor
   (EPERM for regular files and directories, or any other error at
   registration): its watchers are then called at every iteration, as
   libev does, and find out by themselves (a regular file is always
   ready; a bad descriptor fails their system call). *)
type fd_watch = {
  fd : int;
  mutable readers : watcher list;
  mutable writers : watcher list;
  mutable edges : watcher list;
  mutable hangups : watcher list;  (* see [on_hangup] *)
  mutable mask : int;
  mutable unpollable : bool;
}

type timer = {
  mutable at : float;
  mutable seq : int;
  delay : float;
  repeat : bool;
  mutable action : unit -> unit;
      (* Dropped when stopped: a stopped timer may stay in the heap until
         its deadline, and must not keep what its action holds reachable. *)
  mutable stopped : bool;
  mutable queued : bool;  (* in the heap (not only in [pending]) *)
}

(* A binary min-heap of timers, by deadline then by registration order. *)
module Heap = struct
  type t = { mutable a : timer array; mutable n : int }

  let dummy =
    {
      at = 0.;
      seq = 0;
      delay = 0.;
      repeat = false;
      action = ignore;
      stopped = true;
      queued = false;
    }

  let create () = { a = Array.make 64 dummy; n = 0 }
  let before x y = x.at < y.at || (x.at = y.at && x.seq < y.seq)

  let swap h i j =
    let t = h.a.(i) in
    h.a.(i) <- h.a.(j);
    h.a.(j) <- t

  let rec up h i =
    if i > 0 then
      let p = (i - 1) / 2 in
      if before h.a.(i) h.a.(p) then begin
        swap h i p;
        up h p
      end

  let rec down h i =
    let l = (2 * i) + 1 in
    if l < h.n then begin
      let r = l + 1 in
      let m = if r < h.n && before h.a.(r) h.a.(l) then r else l in
      if before h.a.(m) h.a.(i) then begin
        swap h i m;
        down h m
      end
    end

  let push h t =
    if h.n = Array.length h.a then begin
      let a = Array.make (2 * h.n) dummy in
      Array.blit h.a 0 a 0 h.n;
      h.a <- a
    end;
    h.a.(h.n) <- t;
    h.n <- h.n + 1;
    up h (h.n - 1)

  let top h = if h.n = 0 then None else Some h.a.(0)

  let pop h =
    h.n <- h.n - 1;
    h.a.(0) <- h.a.(h.n);
    h.a.(h.n) <- dummy;
    if h.n > 0 then down h 0

  (* Drop the stopped timers (rebuild). *)
  let compact h =
    let live = List.filter (fun t -> not t.stopped) (Array.to_list (Array.sub h.a 0 h.n)) in
    Array.fill h.a 0 h.n dummy;
    h.n <- 0;
    List.iter (push h) live
end

type state = {
  mutable ep : int;  (* the epoll descriptor; -1 once cleaned up *)
  fds : (int, fd_watch) Hashtbl.t;
  unpollable : (int, fd_watch) Hashtbl.t;
  heap : Heap.t;
  mutable pending : timer list;
      (* Timers registered since the last iteration began: they join the
         heap at the next one, so that none fires in the iteration that
         registered it. *)
  mutable stopped_queued : int;  (* stopped timers still in the heap *)
  mutable seq : int;
  mutable next_is_edge : bool;  (* see [on_readable_edge] *)
  mutable next_is_hangup : bool;  (* see [on_hangup] *)
  events : (int, Bigarray.int_elt, Bigarray.c_layout) Bigarray.Array1.t;
}

let max_events = 256

let new_epoll () =
  let ep = Stubs.epoll_create () in
  check_errno "epoll_create1" ep;
  ep

let make_state () =
  {
    ep = new_epoll ();
    fds = Hashtbl.create 64;
    unpollable = Hashtbl.create 4;
    heap = Heap.create ();
    pending = [];
    stopped_queued = 0;
    seq = 0;
    next_is_edge = false;
    next_is_hangup = false;
    events = Bigarray.Array1.create Bigarray.int Bigarray.c_layout (2 * max_events);
  }

(* What the epoll set should hold for [w]: readable if anyone reads (edge
   or level), writable if anyone writes, the peer's hang-up if anyone
   waits for it, and edge-triggered only when every watcher is an edge or
   hang-up watcher (one registration per descriptor: a level watcher must
   see every readiness). *)
let wanted w =
  let r = w.readers <> [] and e = w.edges <> [] and wr = w.writers <> [] in
  let h = w.hangups <> [] in
  (if r || e then Stubs.epollin else 0)
  lor (if wr then Stubs.epollout else 0)
  lor (if h then Stubs.epollrdhup else 0)
  lor if (e || h) && (not r) && not wr then Stubs.epollet else 0

(* Make the epoll set match the watchers of [w] (one epoll_ctl, or none
   when nothing changed). *)
let sync st w =
  let want = wanted w in
  if want = 0 then begin
    if w.mask <> 0 then ignore (Stubs.epoll_ctl st.ep Stubs.epoll_ctl_del w.fd 0 : int);
    Hashtbl.remove st.fds w.fd;
    Hashtbl.remove st.unpollable w.fd
  end
  else if want <> w.mask && not w.unpollable then begin
    let ctl op = Stubs.epoll_ctl st.ep op w.fd want in
    let rc = ctl (if w.mask = 0 then Stubs.epoll_ctl_add else Stubs.epoll_ctl_mod) in
    (* The descriptor was closed and its number reused (the set forgot
       it), or is in the set already: the other operation then. *)
    let rc =
      if rc = -2 (* ENOENT *) then ctl Stubs.epoll_ctl_add
      else if rc = -17 (* EEXIST *) then ctl Stubs.epoll_ctl_mod
      else rc
    in
    if rc = 0 then w.mask <- want
    else begin
      w.unpollable <- true;
      w.mask <- 0;
      Hashtbl.replace st.unpollable w.fd w
    end
  end

let watch st fd =
  let n = fd_int fd in
  match Hashtbl.find_opt st.fds n with
  | Some w -> w
  | None ->
      let w =
        { fd = n; readers = []; writers = []; edges = []; hangups = []; mask = 0; unpollable = false }
      in
      Hashtbl.replace st.fds n w;
      w

let remove x = List.filter (fun y -> y != x)

type kind = Read | Write | Edge | Hangup

let register st kind fd f =
  let w = watch st fd in
  let x = { f; live = true } in
  (match kind with
  | Read -> w.readers <- x :: w.readers
  | Write -> w.writers <- x :: w.writers
  | Edge -> w.edges <- x :: w.edges
  | Hangup -> w.hangups <- x :: w.hangups);
  sync st w;
  lazy
    (if x.live then begin
       x.live <- false;
       x.f <- ignore;
       (match kind with
       | Read -> w.readers <- remove x w.readers
       | Write -> w.writers <- remove x w.writers
       | Edge -> w.edges <- remove x w.edges
       | Hangup -> w.hangups <- remove x w.hangups);
       (* The record may have been dropped and replaced meanwhile (all its
          watchers stopped, then new ones came): sync the current one. *)
       match Hashtbl.find_opt st.fds w.fd with
       | Some w' when w' == w -> sync st w
       | _ -> ()
     end)

let register_timer st delay repeat f =
  let delay = if Float.is_nan delay || delay < 0. then 0. else delay in
  let rec t =
    {
      at = Stubs.monotonic () +. delay;
      seq = 0;
      delay;
      repeat;
      action = (fun () -> if repeat then rearm () ; f ());
      stopped = false;
      queued = false;
    }
  and rearm () =
    t.at <- Stubs.monotonic () +. t.delay;
    st.pending <- t :: st.pending
  in
  st.pending <- t :: st.pending;
  lazy
    (if not t.stopped then begin
       t.stopped <- true;
       t.action <- ignore;
       if t.queued then begin
         st.stopped_queued <- st.stopped_queued + 1;
         if st.stopped_queued > 64 && 2 * st.stopped_queued > st.heap.Heap.n then begin
           Heap.compact st.heap;
           st.stopped_queued <- 0
         end
       end
     end)

let merge_pending st =
  let p = List.rev st.pending in
  st.pending <- [];
  List.iter
    (fun t ->
      if not t.stopped then begin
        st.seq <- st.seq + 1;
        t.seq <- st.seq;
        t.queued <- true;
        Heap.push st.heap t
      end)
    p

(* Drop stopped timers from the top; the first live one. *)
let rec next_timer st =
  match Heap.top st.heap with
  | Some t when t.stopped ->
      Heap.pop st.heap;
      t.queued <- false;
      st.stopped_queued <- max 0 (st.stopped_queued - 1);
      next_timer st
  | top -> top

(* Milliseconds until the next timer (rounded up: never wake early and
   spin), -1 if there is none. *)
let timeout_ms st =
  match next_timer st with
  | None -> -1
  | Some t ->
      let ms = Float.ceil ((t.at -. Stubs.monotonic ()) *. 1000.) in
      if ms <= 0. then 0 else if ms > 1e9 then 1_000_000_000 else int_of_float ms

(* Run every callback; the first exception is re-raised once all ran, so
   that one failing callback never makes the others miss an event (an
   edge-triggered watcher would not be told again). *)
let first_exn = ref None

let call x =
  if x.live then
    try x.f () with e -> if !first_exn = None then first_exn := Some e

let run_timers st =
  let now = Stubs.monotonic () in
  let rec go () =
    match next_timer st with
    | Some t when t.at <= now ->
        Heap.pop st.heap;
        t.queued <- false;
        (* Stopped after it fired, as Lwt's engines do for a one-shot
           timer; a repeating one re-arms itself in [action]. *)
        let action = t.action in
        if not t.repeat then begin
          t.stopped <- true;
          t.action <- ignore
        end;
        (try action () with e -> if !first_exn = None then first_exn := Some e);
        go ()
    | _ -> ()
  in
  go ()

let readable_bits = Stubs.epollin lor Stubs.epollhup lor Stubs.epollerr lor Stubs.epollrdhup
let writable_bits = Stubs.epollout lor Stubs.epollhup lor Stubs.epollerr

let hangup_bits = Stubs.epollhup lor Stubs.epollerr lor Stubs.epollrdhup

let dispatch w ev =
  if ev land hangup_bits <> 0 then List.iter call w.hangups;
  if ev land readable_bits <> 0 then begin
    List.iter call w.edges;
    List.iter call w.readers
  end;
  if ev land writable_bits <> 0 then List.iter call w.writers

let iter st block =
  if st.ep < 0 then invalid_arg "Vchan_rs_lwt_unix.Engine: iter after destroy";
  merge_pending st;
  let timeout =
    if (not block) || Hashtbl.length st.unpollable > 0 then 0 else timeout_ms st
  in
  let n = Stubs.epoll_wait st.ep st.events timeout in
  let n = if n = -4 (* EINTR *) then 0 else n in
  check_errno "epoll_wait" n;
  first_exn := None;
  run_timers st;
  (* The events first (a callback may stop or add watchers: the record is
     looked up again for each event, and stopped watchers are skipped). *)
  for i = 0 to n - 1 do
    let ev = Bigarray.Array1.unsafe_get st.events (2 * i) in
    let fd = Bigarray.Array1.unsafe_get st.events ((2 * i) + 1) in
    match Hashtbl.find_opt st.fds fd with
    | Some w when w.mask <> 0 -> dispatch w ev
    | _ -> ()
  done;
  if Hashtbl.length st.unpollable > 0 then begin
    let ws = Hashtbl.fold (fun _ w l -> w :: l) st.unpollable [] in
    List.iter (fun w -> dispatch w (readable_bits lor writable_bits)) ws
  end;
  match !first_exn with
  | None -> ()
  | Some e ->
      first_exn := None;
      raise e

(* In a child after fork(2): a new epoll set of its own, with the same
   registrations (the parent's set is shared with the parent). *)
let after_fork st =
  if st.ep >= 0 then begin
    (try Unix.close (Obj.magic st.ep : Unix.file_descr) with Unix.Unix_error _ -> ());
    st.ep <- new_epoll ();
    let ws = Hashtbl.fold (fun _ w l -> w :: l) st.fds [] in
    List.iter
      (fun w ->
        w.mask <- 0;
        w.unpollable <- false;
        Hashtbl.remove st.unpollable w.fd;
        sync st w)
      ws
  end

let cleanup st =
  if st.ep >= 0 then begin
    (try Unix.close (Obj.magic st.ep : Unix.file_descr) with Unix.Unix_error _ -> ());
    st.ep <- -1
  end

class engine () =
  let st = make_state () in
  object (self)
    inherit Engine_base.t
    method iter block = iter st block
    method private cleanup = cleanup st

    method private register_readable fd f =
      let kind =
        if st.next_is_hangup then Hangup else if st.next_is_edge then Edge else Read
      in
      st.next_is_edge <- false;
      st.next_is_hangup <- false;
      register st kind fd f

    method private register_writable fd f = register st Write fd f
    method private register_timer delay repeat f = register_timer st delay repeat f
    method! fork = after_fork st

    method on_readable_edge fd f =
      st.next_is_edge <- true;
      Fun.protect
        ~finally:(fun () -> st.next_is_edge <- false)
        (fun () -> self#on_readable fd f)

    method on_hangup fd f =
      st.next_is_hangup <- true;
      Fun.protect
        ~finally:(fun () -> st.next_is_hangup <- false)
        (fun () -> self#on_readable fd f)
  end

(* The engines made here: [on_readable_edge] only uses edge triggering
   when the current engine is one of them. *)
let made : engine list ref = ref []

let create () =
  let e = new engine () in
  made := e :: !made;
  (e :> Lwt_engine.t)

let current () =
  let cur = Oo.id (Lwt_engine.get ()) in
  List.find_opt (fun e -> Oo.id e = cur) !made

let now () = Stubs.monotonic ()
let installed () = current () <> None
let install () = if not (installed ()) then Lwt_engine.set (create ())

let on_readable_edge fd f =
  match current () with Some e -> Some (e#on_readable_edge fd f) | None -> None

let on_hangup fd f =
  match current () with Some e -> Some (e#on_hangup fd f) | None -> None
