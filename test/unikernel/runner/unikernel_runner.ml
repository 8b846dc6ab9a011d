let main ~name ~now =
  let line fmt = Printf.ksprintf (fun s -> print_string (name ^ ": " ^ s ^ "\n"); flush stdout) fmt in
  let passed = ref 0 and failed = ref 0 in
  let check id f =
    match f () with
    | x ->
        incr passed;
        Some x
    | exception e ->
        incr failed;
        line "%s FAILED: %s" id (Printexc.to_string e);
        None
  in
  List.iter
    (fun c ->
      match check c.Functor_cases.id c.Functor_cases.run with
      | Some () -> line "%s ok" c.Functor_cases.id
      | None -> ())
    Functor_cases.all;
  (match check "timings" (fun () -> Functor_timing.all ~now @ Mem_timing.all ~now) with
  | Some figures ->
      line "timings ok";
      List.iter
        (fun f -> line "time %s %.2f %s" f.Functor_timing.id f.Functor_timing.value f.Functor_timing.unit_)
        figures
  | None -> ());
  line "%d passed, %d failed" !passed !failed;
  exit (if !failed = 0 then 0 else 1)
