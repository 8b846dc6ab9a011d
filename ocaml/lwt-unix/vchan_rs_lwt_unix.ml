open Lwt.Infix
module Endpoint = Endpoint
module Engine = Engine
module Backend = Backend
module E = Endpoint

module M : Vchan_rs.S.ENDPOINT with type port = Vchan_rs.Port.t = E

let raise_error e = Lwt.fail (Vchan_rs.Error.Vchan e)

(* Lwt_io reader: a copying read straight into the channel's buffer (one
   copy, and the ring is released as it is copied; see E.read_into). *)
let reader t buf ofs len =
  E.read_into t (Cstruct.of_bigarray buf ~off:ofs ~len) >>= function
  | Ok (`Data n) -> Lwt.return n
  | Ok `Eof -> Lwt.return 0
  | Error e -> raise_error e

let writer t buf ofs len =
  E.write t (Cstruct.of_bigarray buf ~off:ofs ~len) >>= function
  | Ok () -> Lwt.return len
  | Error e -> raise_error e

let of_flow ?(buffer_size = 65536) t =
  let close () = E.close t in
  let ic =
    Lwt_io.make
      ~buffer:(Lwt_bytes.create buffer_size)
      ~mode:Lwt_io.input ~close (reader t)
  in
  let oc =
    Lwt_io.make
      ~buffer:(Lwt_bytes.create buffer_size)
      ~mode:Lwt_io.output ~close (writer t)
  in
  (ic, oc)

let open_client ~domid ~port ?buffer_size () =
  E.client ~domid ~port () >|= of_flow ?buffer_size

let open_server ~domid ~port ?(buffer_size = 65536) () =
  E.server ~domid ~port ~read_size:buffer_size ~write_size:buffer_size ()
  >|= of_flow ~buffer_size
