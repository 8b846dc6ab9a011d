(* What mirage configure -t xen generates for ocaml-vchan's server: its
   Unikernel.Server job on a console, under mirage-xen's main loop. *)
let () =
  let module Job = Unikernel.Server (Mirage_console_lwt.Stdout) in
  Xen_os.Main.run (Job.start ())
