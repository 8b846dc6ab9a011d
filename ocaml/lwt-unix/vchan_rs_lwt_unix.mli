(** Vchan endpoints for Lwt on Unix (library [vchan-rs-unix]), as
    ocaml-vchan's [Vchan_lwt_unix]: {!Endpoint} (the functor
    [Vchan_rs.Endpoint.Make_with] applied to Lwt Unix plumbing) over the Rust std crate's
    unix backend (no hypervisor) or xen backend, and [Lwt_io] channels.

    The backend is the one [$VCHAN_BACKEND] names (unix by default; see
    {!Backend}); for another, make the endpoint with {!Endpoint.listen} or
    {!Endpoint.connect} and wrap it with {!of_flow}. *)

module Backend = Backend
(** Which backend an endpoint lives in. *)

module Endpoint = Endpoint
(** The endpoint, with its extras. *)

module Engine = Engine
(** An opt-in epoll-based Lwt engine under which an endpoint's wake-up
    costs two system calls instead of three or four: call
    [Vchan_rs_lwt_unix.Engine.install ()] before [Lwt_main.run]. *)

module M : Vchan_rs.S.ENDPOINT with type port = Vchan_rs.Port.t
(** The endpoint, with types abstract as in ocaml-vchan ({!Endpoint}
    is the same implementation with its types and extras exposed). *)

val open_client :
  domid:int ->
  port:Vchan_rs.Port.t ->
  ?buffer_size:int ->
  unit ->
  (Lwt_io.input_channel * Lwt_io.output_channel) Lwt.t
(** [open_client ~domid ~port ?buffer_size ()] connects to the server in
    domain [domid] on [port], waiting for it to appear, and returns channels
    over the vchan. Closing either channel closes the vchan (close the output
    channel first, so that it is flushed). [buffer_size] (default 65536) is
    the size of each [Lwt_io] buffer. Errors are raised as
    {!Vchan_rs.Error.Vchan}. *)

val open_server :
  domid:int ->
  port:Vchan_rs.Port.t ->
  ?buffer_size:int ->
  unit ->
  (Lwt_io.input_channel * Lwt_io.output_channel) Lwt.t
(** [open_server ~domid ~port ?buffer_size ()] serves client domain [domid]
    on [port], resolves once it connected, and returns channels over the
    vchan. [buffer_size] (default 65536) is both the minimum size of each
    ring and the size of each [Lwt_io] buffer. *)

val of_flow :
  ?buffer_size:int ->
  Endpoint.t ->
  Lwt_io.input_channel * Lwt_io.output_channel
(** [of_flow t] are channels over endpoint [t], as {!open_client} returns. *)
