(** Shared memory over mirage-xen's grant tables, [Xen_os.Xen.Export]
    (share, unshare releasing the refs) and [Xen_os.Xen.Import] (map, unmap)
    (ocaml-vchan's [Memory_xen]). A full grant table or a failed map or
    unmap raises {!Vchan_rs.Error.Vchan} [(`System _)]. *)

include
  Vchan_rs.S.MEMORY
    with type grant = Xen_os.Xen.Gntref.t
     and type share = Xen_os.Xen.Export.t
     and type mapping = Xen_os.Xen.Import.Local_mapping.t
