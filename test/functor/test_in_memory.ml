(* The functor's cases over In_memory (test/functor/cases), under
   alcotest. *)

let () =
  Test_harness.run "vchan-rs in-memory functor"
    [ ("In_memory", List.map (fun c -> (c.Functor_cases.doc, c.Functor_cases.run)) Functor_cases.all) ]
