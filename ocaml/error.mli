(** Errors of vchan endpoints. *)

type t =
  [ `Closed  (** The channel is closed (by us, or by the peer for writes). *)
  | `Busy  (** Another client is already connected to this server. *)
  | `Addr_in_use
    (** A live server already serves this client domain and port (under
        Xen: or an entry is there that no dead vchan-rs server of this
        domain provably wrote). *)
  | `Timeout  (** No server appeared in time. *)
  | `Invalid_argument of string
    (** A bad domain id, port name, ring size or packet size. *)
  | `Unavailable of string  (** The backend cannot be used here. *)
  | `Protocol of string  (** The peer broke the vchan protocol. *)
  | `System of string  (** A system call failed. *) ]

val pp : Format.formatter -> t -> unit
(** [pp] prints a human-readable description. *)

val to_string : t -> string
(** [to_string e] is the text {!pp} prints. *)

exception Vchan of t
(** Raised (or returned as a failed promise) by the functions that create
    endpoints, and by the [Lwt_io] channels of [Vchan_rs_lwt_unix]. *)

(**/**)

val of_code : int * string -> t
(* From the stubs' (kind, message) pairs. *)
