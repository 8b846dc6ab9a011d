(* A Qubes unikernel's start: QubesDB and qrexec agents connect to dom0 over
   vchan-rs-xen (through mirage-qubes), then disconnect. *)
open Lwt.Infix

let () =
  Xen_os.Main.run
    ( Qubes.DB.connect ~domid:0 () >>= fun db ->
      Qubes.RExec.connect ~domid:0 () >>= fun qrexec ->
      Logs.info (fun f -> f "connected to QubesDB and qrexec");
      Qubes.RExec.disconnect qrexec >>= fun () -> Qubes.DB.disconnect db )
