module type S = sig
  type t

  val log : t -> string -> unit Lwt.t
end

module Stdout = struct
  type t = unit

  let log () line =
    print_endline line;
    Lwt.return_unit
end
