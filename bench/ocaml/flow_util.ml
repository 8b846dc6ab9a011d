(* Helpers the OCaml benchmarks share, over any vchan endpoint (vchan-rs's
   or ocaml-vchan's: the reading half of their common signature). *)

open Lwt.Infix

module type READER = sig
  type t
  type error

  val pp_error : Format.formatter -> error -> unit
  val read : t -> ([ `Data of Cstruct.t | `Eof ], error) result Lwt.t
end

module Make (F : READER) = struct
  let failure e = failwith (Format.asprintf "%a" F.pp_error e)

  (* Read exactly [Cstruct.length buf - off] more bytes into [buf]. Bytes of
     a view past what [buf] holds would belong to the next message: the
     benchmarks never send one before this one is answered. *)
  let rec read_n t buf off =
    if off = Cstruct.length buf then Lwt.return_unit
    else
      F.read t >>= function
      | Ok (`Data v) ->
          let n = min (Cstruct.length v) (Cstruct.length buf - off) in
          Cstruct.blit v 0 buf off n;
          read_n t buf (off + n)
      | Ok `Eof -> failwith "early end of stream"
      | Error e -> failure e

  (* The next view, copied out into [buf] (at least the ring's size) before
     the caller checks it: a stream reader that keeps its data pays that
     copy, as the Rust reader does into its buffer. Returns a reader of the
     copy and its length. *)
  let next_copied t buf =
    F.read t >|= function
    | Ok (`Data v) ->
        let n = Cstruct.length v in
        Cstruct.blit v 0 buf 0 n;
        ((fun i -> Cstruct.get_char buf i), n)
    | Ok `Eof -> failwith "early end of stream"
    | Error e -> failure e
end
