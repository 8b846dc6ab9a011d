(* Compile-time checks: Vchan_rs matches the documented signatures of
   mirage-flow 4 (Mirage_flow.S) and ocaml-vchan 6 (Vchan.Port,
   Vchan.S.ENDPOINT/EVENTS/MEMORY/CONFIGURATION, Vchan.Endpoint.Make,
   Vchan.In_memory, Vchan_lwt_unix.open_client and open_server), written out
   here from their documentation. *)

module Mirage_flow = struct
  type write_error = [ `Closed ]
  type 'a or_eof = [ `Data of 'a | `Eof ]

  module type S = sig
    type error

    val pp_error : Format.formatter -> error -> unit

    type nonrec write_error = private [> write_error ]

    val pp_write_error : Format.formatter -> write_error -> unit

    type flow

    val read : flow -> (Cstruct.t or_eof, error) result Lwt.t
    val write : flow -> Cstruct.t -> (unit, write_error) result Lwt.t
    val writev : flow -> Cstruct.t list -> (unit, write_error) result Lwt.t
    val shutdown : flow -> [ `read | `write | `read_write ] -> unit Lwt.t
    val close : flow -> unit Lwt.t
  end
end

module Vchan = struct
  module Port = struct
    module type S = sig
      type t

      val of_string : string -> (t, [> `Msg of string ]) result
      val to_string : t -> string
    end
  end

  module S = struct
    (* io-page's Io_page.t. *)
    type page =
      (char, Bigarray.int8_unsigned_elt, Bigarray.c_layout) Bigarray.Array1.t

    module type CONFIGURATION = sig
      type t = { ring_ref : string; event_channel : string }

      val write : client_domid:int -> port:Vchan_rs.Port.t -> t -> unit Lwt.t
      val read : server_domid:int -> port:Vchan_rs.Port.t -> t Lwt.t
      val delete : client_domid:int -> port:Vchan_rs.Port.t -> unit Lwt.t
    end

    module type MEMORY = sig
      type grant

      val grant_of_int32 : int32 -> grant
      val int32_of_grant : grant -> int32

      type share

      val grants_of_share : share -> grant list
      val buf_of_share : share -> page
      val share : domid:int -> npages:int -> rw:bool -> share
      val unshare : share -> unit Lwt.t

      type mapping

      val buf_of_mapping : mapping -> page
      val map : domid:int -> grant:grant -> rw:bool -> mapping
      val mapv : grants:(int * grant) list -> rw:bool -> mapping
      val unmap : mapping -> unit
    end

    module type EVENTS = sig
      type port

      val port_of_string : string -> (port, [> `Msg of string ]) result
      val string_of_port : port -> string

      type channel
      type event

      val initial : event
      val recv : channel -> event -> event Lwt.t
      val send : channel -> unit
      val listen : int -> port * channel
      val connect : int -> port -> channel
      val close : channel -> unit
    end

    module type ENDPOINT = sig
      type t
      type port

      val server :
        domid:int ->
        port:port ->
        ?read_size:int ->
        ?write_size:int ->
        unit ->
        t Lwt.t

      val client : domid:int -> port:port -> unit -> t Lwt.t

      include Mirage_flow.S with type flow = t
    end
  end
end

module Port_matches : Vchan.Port.S = Vchan_rs.Port

module M_matches : Vchan.S.ENDPOINT with type port = Vchan_rs.Port.t =
  Vchan_rs_lwt_unix.M

module Endpoint_matches : Vchan.S.ENDPOINT with type port = Vchan_rs.Port.t =
  Vchan_rs_lwt_unix.Endpoint

(* Vchan_rs.S.ENDPOINT and Vchan.S.ENDPOINT are the same signature. *)
module To_vchan (X : Vchan_rs.S.ENDPOINT) : Vchan.S.ENDPOINT = X
module Of_vchan (X : Vchan.S.ENDPOINT) : Vchan_rs.S.ENDPOINT = X
module Flow_matches (X : Vchan_rs.S.FLOW) : Mirage_flow.S = X

(* The functor's module types are ocaml-vchan's, both ways (ocaml-vchan's
   CONFIGURATION names its own Port.t: here, as for a user of vchan-rs,
   Vchan_rs.Port.t). *)
module Events_to (X : Vchan_rs.S.EVENTS) : Vchan.S.EVENTS = X
module Events_of (X : Vchan.S.EVENTS) : Vchan_rs.S.EVENTS = X
module Memory_to (X : Vchan_rs.S.MEMORY) : Vchan.S.MEMORY = X
module Memory_of (X : Vchan.S.MEMORY) : Vchan_rs.S.MEMORY = X
module Config_to (X : Vchan_rs.S.CONFIGURATION) : Vchan.S.CONFIGURATION = X
module Config_of (X : Vchan.S.CONFIGURATION) : Vchan_rs.S.CONFIGURATION = X

(* Modules written for ocaml-vchan's functor apply to ours, and the result
   is an ocaml-vchan endpoint. *)
module Apply (E : Vchan.S.EVENTS) (M : Vchan.S.MEMORY) (C : Vchan.S.CONFIGURATION) :
  Vchan.S.ENDPOINT with type port = Vchan_rs.Port.t =
  Vchan_rs.Endpoint.Make (E) (M) (C)

module In_memory_matches : Vchan.S.ENDPOINT with type port = Vchan_rs.Port.t =
  Vchan_rs.In_memory

module In_memory_events_matches : Vchan.S.EVENTS = Vchan_rs.In_memory_events

let _ : unit -> unit = Vchan_rs.In_memory.assert_cleaned_up
let _ : unit -> unit = Vchan_rs.In_memory_events.assert_cleaned_up

let open_client :
    domid:int ->
    port:Vchan_rs.Port.t ->
    ?buffer_size:int ->
    unit ->
    (Lwt_io.input_channel * Lwt_io.output_channel) Lwt.t =
  Vchan_rs_lwt_unix.open_client

let open_server :
    domid:int ->
    port:Vchan_rs.Port.t ->
    ?buffer_size:int ->
    unit ->
    (Lwt_io.input_channel * Lwt_io.output_channel) Lwt.t =
  Vchan_rs_lwt_unix.open_server
