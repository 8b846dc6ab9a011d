let run name groups =
  let passed = ref 0 and failed = ref 0 in
  let case (case_name, f) =
    Alcotest.test_case case_name `Quick (fun () ->
        match f () with
        | () -> incr passed
        | exception e ->
            incr failed;
            raise e)
  in
  let summary () =
    Printf.printf "\ntest result: %s. %d passed; %d failed\n%!"
      (if !failed = 0 then "ok" else "FAILED")
      !passed !failed
  in
  match
    Alcotest.run ~and_exit:false name
      (List.map (fun (group, cases) -> (group, List.map case cases)) groups)
  with
  | () -> summary ()
  | exception Alcotest.Test_error ->
      summary ();
      exit 1
