(* What mirage configure -t xen generates for ocaml-vchan's client: its
   Unikernel.Client job on a console, under mirage-xen's main loop. *)
let () =
  let module Job = Unikernel.Client (Mirage_console_lwt.Stdout) in
  Xen_os.Main.run (Job.start ())
