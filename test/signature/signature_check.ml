(* Compile-time checks: Vchan_rs matches the documented signatures of
   mirage-flow 4 (Mirage_flow.S) and ocaml-vchan 6 (Vchan.Port,
   Vchan.S.ENDPOINT, Vchan_lwt_unix.open_client and open_server), written out here from their
   documentation. *)

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
  Vchan_rs.Endpoint

(* Vchan_rs.S.ENDPOINT and Vchan.S.ENDPOINT are the same signature. *)
module To_vchan (X : Vchan_rs.S.ENDPOINT) : Vchan.S.ENDPOINT = X
module Of_vchan (X : Vchan.S.ENDPOINT) : Vchan_rs.S.ENDPOINT = X
module Flow_matches (X : Vchan_rs.S.FLOW) : Mirage_flow.S = X

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
