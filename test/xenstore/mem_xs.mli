(** An in-memory xenstore shared by the domains of one process, with
    xenstored's rules where the rendezvous depends on them: paths relative
    to the caller's domain path, read and write permissions, atomic
    transactions (replayed on conflict), and [wait] re-run when the store
    changes. *)

exception Enoent of string
(** Raised by reads of a missing path. *)

exception Eacces of string
(** Raised when the calling domain may not access a path. *)

type perms = { owner : int; readers : int list }
(** A node's permissions: [owner] has full access, [readers] may read,
    other domains (but domain 0) none. *)

val reset : domids:int list -> unit
(** [reset ~domids] empties the store, then makes each domain's
    [/local/domain/<d>/domid] (readable by [d]) and [/local/domain/<d>/data]
    (owned by [d]), as a toolstack does. *)

val set_raw : string -> string -> readers:int list -> unit
(** [set_raw path value ~readers] writes [path] as domain 0 would, readable
    by [readers]. *)

val get : string -> (string * perms) option
(** [get path] is [path]'s value and permissions, if it exists. *)

val paths_under : string -> string list
(** [paths_under dir] lists the existing paths below [dir], sorted. *)

val commits : unit -> string list list
(** [commits ()] is, oldest first, the paths each committed transaction
    wrote or removed. *)

val wait_rounds : unit -> int
(** [wait_rounds ()] counts the times a [wait] function raised [Eagain] and
    was put to sleep until the next change. *)

val settle : unit -> unit
(** [settle ()] runs the paused Lwt threads until none is left. Nothing
    here does I/O: a promise still pending after [settle ()] is waiting
    for a change of the store. *)

val resolved : 'a Lwt.t -> 'a
(** [resolved p] is [p]'s value after {!settle}; it re-raises [p]'s
    exception, and raises [Failure "still waiting"] while [p] waits. *)

(** The client of domain [D.domid]. *)
module Xs (D : sig
  val domid : int
  (** The calling domain. *)
end) : Vchan_rs.Xenstore.XS with type acl = perms
