module Gntref = Xen_os.Xen.Gntref
module Export = Xen_os.Xen.Export
module Import = Xen_os.Xen.Import

let system what m = raise (Vchan_rs.Error.Vchan (`System (what ^ ": " ^ m)))

type grant = Gntref.t

let grant_of_int32 = Gntref.of_int32
let int32_of_grant = Gntref.to_int32

type share = Export.t

let grants_of_share = Export.refs
(* io-page 3's Io_page.t is private: a coercion, not a copy. *)
let buf_of_share s = (Export.mapping s :> Vchan_rs.S.page)

let share ~domid ~npages ~rw =
  match Export.share_pages ~domid ~count:npages ~writable:rw with
  | Ok s -> s
  | Error `Grant_table_full ->
      system "sharing pages" (Printf.sprintf "grant table full (%d pages)" npages)

let unshare = Export.unshare ~release_refs:true

type mapping = Import.Local_mapping.t

let buf_of_mapping m = (Import.Local_mapping.to_buf m :> Vchan_rs.S.page)

let mapped what = function Ok m -> m | Error (`Msg m) -> system what m

let map ~domid ~grant ~rw =
  mapped "mapping a grant" (Import.map { Import.domid; ref = grant } ~writable:rw)

let mapv ~grants ~rw =
  let grants = List.map (fun (domid, ref) -> { Import.domid; ref }) grants in
  mapped "mapping grants" (Import.mapv grants ~writable:rw)

let unmap m = mapped "unmapping" (Import.Local_mapping.unmap m)
