(** Timings of the C [memcpy], [memset] and [memcmp] that the program's
    OCaml libraries call (through cstruct's stubs): in the unikernel, these
    are whichever definitions the link chose (nolibc's, or the Rust
    archive's; see docs/mirage.md). Nothing is asserted about them. *)

val all : now:(unit -> float) -> Functor_timing.figure list
(** [all ~now] measures, each the best of three runs ([now ()]: a monotonic
    clock in seconds):
    - [memcpy-64KiB]: [Cstruct.blit_to_bytes] of 64 KiB (MiB/s);
    - [memcpy-64B]: [Cstruct.blit_to_bytes] of 64 bytes (ns per copy);
    - [memset-64KiB]: [Cstruct.memset] of 64 KiB (MiB/s);
    - [memcmp-64KiB]: [Cstruct.equal] of two equal 64 KiB buffers
      (MiB/s). *)
