(** Where vchans live. *)

type t =
  | Unix
      (** No hypervisor: two processes of one host share memory files and
          meet in a directory ([VCHAN_UNIX_DIR]); this process's domain id
          is [VCHAN_DOMID] (default 0). *)
  | Xen  (** Xen grant tables, event channels and xenstore. *)

val of_string : string -> (t, [> `Msg of string ]) result
(** ["unix"] or ["xen"]. *)

val to_string : t -> string
(** ["unix"] or ["xen"]: the names {!of_string} accepts. *)

val env_var : string
(** ["VCHAN_BACKEND"]: the environment variable choosing the default. *)

val default : unit -> (t, [> `Msg of string ]) result
(** The backend named by [$VCHAN_BACKEND]; {!Unix} when it is unset or
    empty. *)

(** {1 The unix backend's settings}

    As the library resolves them, so that a program's messages name what
    the library uses. *)

val unix_dir : unit -> string
(** The unix backend's rendezvous directory: [$VCHAN_UNIX_DIR], else
    [$XDG_RUNTIME_DIR/vchan], else [$TMPDIR/vchan-UID] ([/tmp] when
    [TMPDIR] is unset or empty), [UID] being this process's user id.
    For messages: bytes of the path that are not UTF-8 are replaced. *)
