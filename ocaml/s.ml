(** Module types, written out to match mirage-flow 4's [Mirage_flow.S] and
    ocaml-vchan 6's [Vchan.S] ([ENDPOINT], [EVENTS], [MEMORY],
    [CONFIGURATION]) structurally, without depending on either package.
    Modules written for ocaml-vchan's functor may not fit unchanged: a
    [MEMORY] returning io-page 3's private [Io_page.t] (ocaml-vchan's
    [Memory_xen]) must coerce it (see {!page}), and a [CONFIGURATION] from
    [Vchan.Xenstore.Make] takes [Vchan.Port.t]: use {!Xenstore.Make}
    (library [vchan-rs-xen] has both for mirage-xen). *)

type page = (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t
(** Memory: one or more 4096-byte pages. io-page 3's [Io_page.t] is a
    private abbreviation of this type: coerce with [(p :> page)]. *)

(** Where a server publishes its rendezvous and a client finds it (xenstore
    under Xen), as ocaml-vchan's [S.CONFIGURATION]. *)
module type CONFIGURATION = sig
  type t = { ring_ref : string; event_channel : string }
  (** The grant ref of the shared page and the server's event channel port. *)

  val write : client_domid:int -> port:Port.t -> t -> unit Lwt.t
  (** [write ~client_domid ~port t] publishes [t] for [client_domid]. *)

  val read : server_domid:int -> port:Port.t -> t Lwt.t
  (** [read ~server_domid ~port] waits for and returns what the server
      published. *)

  val delete : client_domid:int -> port:Port.t -> unit Lwt.t
  (** [delete ~client_domid ~port] removes it. *)
end

(** Shared memory (grant tables under Xen), as ocaml-vchan's [S.MEMORY]. *)
module type MEMORY = sig
  type grant
  (** A grant reference. *)

  val grant_of_int32 : int32 -> grant
  (** A grant from the number that travels in the shared page. *)

  val int32_of_grant : grant -> int32
  (** The number written in the shared page for a grant. *)

  type share
  (** Pages we share. *)

  val grants_of_share : share -> grant list
  (** The refs of a share's pages, in order. *)

  val buf_of_share : share -> page
  (** The shared pages, contiguous. *)

  val share : domid:int -> npages:int -> rw:bool -> share
  (** [share ~domid ~npages ~rw] shares [npages] fresh pages with [domid]. *)

  val unshare : share -> unit Lwt.t
  (** [unshare s] ends the sharing of [s]'s pages. *)

  type mapping
  (** Pages of another domain we mapped. *)

  val buf_of_mapping : mapping -> page
  (** The mapped pages, contiguous. *)

  val map : domid:int -> grant:grant -> rw:bool -> mapping
  (** [map ~domid ~grant ~rw] maps one page. *)

  val mapv : grants:(int * grant) list -> rw:bool -> mapping
  (** [mapv ~grants ~rw] maps the [(domid, grant)] pages contiguously. *)

  val unmap : mapping -> unit
  (** [unmap m] unmaps [m]'s pages. *)
end

(** Event channels, as ocaml-vchan's [S.EVENTS]. *)
module type EVENTS = sig
  type port
  (** Where a channel can be connected; exchanged out of band. *)

  val port_of_string : string -> (port, [> `Msg of string ]) result
  (** A port from its printed form (as published in the store). *)

  val string_of_port : port -> string
  (** The printed form of a port. *)

  type channel
  (** One end of a connection between two domains. *)

  type event
  (** A notification: events carry no data and may coalesce. *)

  val initial : event
  (** The event that "fired" when the program started. *)

  val recv : channel -> event -> event Lwt.t
  (** [recv channel event] waits for an event newer than [event] (at once
      if one arrived since). *)

  val send : channel -> unit
  (** [send channel] signals the other end. *)

  val listen : int -> port * channel
  (** [listen domid] allocates a port that [domid] may [connect] to. *)

  val connect : int -> port -> channel
  (** [connect domid port] connects to [port] of [domid]. *)

  val close : channel -> unit
  (** [close channel] closes this end. *)
end

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
