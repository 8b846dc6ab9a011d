(* Helpers the OCaml benchmarks share, over any vchan-rs endpoint. *)

open Lwt.Infix

module Make (F : Vchan_rs.S.ENDPOINT with type error = Vchan_rs.Error.t) = struct
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
      | Error e -> failwith (Vchan_rs.Error.to_string e)
end
