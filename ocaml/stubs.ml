(* The Rust stubs (rust/vchan-ocaml). Internal: use Endpoint.

   A handle is the address of a Rust Box<Handle>, as an int, owned by the
   bigarray [ring] returns. Data-path
   externals are [@@noalloc] and take/return untagged ints; they never
   block, allocate or raise, and return a count or a negative code. *)

type handle = int

let e_again = -1
let e_eof = -2
let e_closed = -3
let e_error = -4

(* Control path (#[ocaml::func]). *)

external listen :
  string option -> int -> string -> int -> int -> (handle, int * string) result
  = "vchan_rs_listen"

external try_connect :
  string option -> int -> string -> (handle, int * string) result
  = "vchan_rs_try_connect"

external port_check : string -> (unit, string) result = "vchan_rs_port_check"
external close : handle -> (unit, int * string) result = "vchan_rs_close"
external last_error : handle -> int * string = "vchan_rs_last_error"
external is_server : handle -> bool = "vchan_rs_is_server"

external ring : handle -> Cstruct.buffer = "vchan_rs_ring"
(* The read ring as a bigarray that owns the handle: the handle is freed
   (closed and unmapped) when it and every sub-array of it are collected.
   Call once per handle, right after creating it. *)

(* Data path. *)

external write :
  (handle[@untagged]) ->
  Cstruct.buffer ->
  (int[@untagged]) ->
  (int[@untagged]) ->
  (int[@untagged]) = "vchan_rs_write_byte" "vchan_rs_write"
  [@@noalloc]

external send :
  (handle[@untagged]) ->
  Cstruct.buffer ->
  (int[@untagged]) ->
  (int[@untagged]) ->
  (int[@untagged]) = "vchan_rs_send_byte" "vchan_rs_send"
  [@@noalloc]

external recv :
  (handle[@untagged]) ->
  Cstruct.buffer ->
  (int[@untagged]) ->
  (int[@untagged]) ->
  (int[@untagged]) = "vchan_rs_recv_byte" "vchan_rs_recv"
  [@@noalloc]

external peek : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_peek_byte" "vchan_rs_peek"
  [@@noalloc]
(* [offset lsl 32 lor length] (length > 0), or a negative code. *)

external consume : (handle[@untagged]) -> (int[@untagged]) -> (int[@untagged])
  = "vchan_rs_consume_byte" "vchan_rs_consume"
  [@@noalloc]

external write_from_fd :
  (handle[@untagged]) -> (int[@untagged]) -> (int[@untagged])
  = "vchan_rs_write_from_fd_byte" "vchan_rs_write_from_fd"
  [@@noalloc]
(* One read(2) of a descriptor (non-blocking, or a regular file) into the
   write ring's free span: bytes read (> 0), 0 (nothing now), e_eof, or a
   negative code. *)

external data_ready : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_data_ready_byte" "vchan_rs_data_ready"
  [@@noalloc]

external buffer_space : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_buffer_space_byte" "vchan_rs_buffer_space"
  [@@noalloc]

external state : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_state_byte" "vchan_rs_state"
  [@@noalloc]
(* 0 waiting, 1 connected, 2 exited, or a negative code. *)

external fd : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_fd_byte" "vchan_rs_fd"
  [@@noalloc]

external consume_events : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_consume_events_byte" "vchan_rs_consume_events"
  [@@noalloc]
(* Consume pending events (when [fd] polls readable): 0 or a negative code. *)

external peer_vanished : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_peer_vanished_byte" "vchan_rs_peer_vanished"
  [@@noalloc]
(* 1 if the peer went away without closing, else 0. *)

external linger : (handle[@untagged]) -> (int[@untagged])
  = "vchan_rs_linger_byte" "vchan_rs_linger"
  [@@noalloc]
(* 0 once the peer read everything we wrote, or a negative code. *)
