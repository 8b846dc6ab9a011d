(** Module types, written out to match mirage-flow 4's [Mirage_flow.S] and
    ocaml-vchan 6's [Vchan.S.ENDPOINT] structurally, without depending on
    either package. *)

type 'a or_eof = [ `Data of 'a | `Eof ]
(** [Mirage_flow.or_eof]: data, or the end of the stream. *)

(** The flow signature of mirage-flow 4 ([Mirage_flow.S]). *)
module type FLOW = sig
  type error
  (** Read errors. *)

  val pp_error : Format.formatter -> error -> unit
  (** [pp_error] prints a read error. *)

  type write_error = private [> `Closed ]
  (** Write errors; [`Closed] once the flow or its peer closed. *)

  val pp_write_error : Format.formatter -> write_error -> unit
  (** [pp_write_error] prints a write error. *)

  type flow
  (** A reliable byte stream between two endpoints. *)

  val read : flow -> (Cstruct.t or_eof, error) result Lwt.t
  (** [read flow] waits for data: [Ok (`Data buf)] with at least one byte,
      or [Ok `Eof] at the end of the stream. *)

  val write : flow -> Cstruct.t -> (unit, write_error) result Lwt.t
  (** [write flow buf] resolves once all of [buf] was accepted. *)

  val writev : flow -> Cstruct.t list -> (unit, write_error) result Lwt.t
  (** [writev flow bufs] writes [bufs] in order. *)

  val shutdown : flow -> [ `read | `write | `read_write ] -> unit Lwt.t
  (** [shutdown flow mode] stops reading, writing or both. *)

  val close : flow -> unit Lwt.t
  (** [close flow] closes the flow; subsequent writes fail. *)
end

(** A vchan endpoint, as ocaml-vchan's [Vchan.S.ENDPOINT]. *)
module type ENDPOINT = sig
  type t
  (** A vchan endpoint. *)

  type port
  (** A vchan port name. *)

  val server :
    domid:int ->
    port:port ->
    ?read_size:int ->
    ?write_size:int ->
    unit ->
    t Lwt.t
  (** [server ~domid ~port ()] serves client domain [domid] on [port] and
      resolves once the client connected. [read_size] and [write_size] are
      the minimum ring sizes in bytes. *)

  val client : domid:int -> port:port -> unit -> t Lwt.t
  (** [client ~domid ~port ()] connects to the server in domain [domid] on
      [port], waiting for it to appear. *)

  include FLOW with type flow = t
end
