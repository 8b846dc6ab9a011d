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

let pseudo_random = Pseudo_random.bytes

let rec rm_rf p =
  if Sys.file_exists p then
    if Sys.is_directory p then begin
      Array.iter (fun f -> rm_rf (Filename.concat p f)) (Sys.readdir p);
      Unix.rmdir p
    end
    else Sys.remove p

let unix_backend_root () =
  let root = Filename.temp_file "vchan-rs-test" "" in
  Sys.remove root;
  Unix.mkdir root 0o700;
  Unix.putenv "VCHAN_UNIX_DIR" (Filename.concat root "vchan");
  Unix.putenv "VCHAN_DOMID" "1";
  Unix.putenv "VCHAN_BACKEND" "unix";
  at_exit (fun () -> rm_rf root);
  root

let env_with bindings =
  let keep v =
    not (List.exists (fun (k, _) -> String.starts_with ~prefix:(k ^ "=") v) bindings)
  in
  Array.append
    (Array.of_list (List.filter keep (Array.to_list (Unix.environment ()))))
    (Array.of_list (List.map (fun (k, v) -> k ^ "=" ^ v) bindings))

let spawn_self bindings =
  Unix.create_process_env Sys.executable_name [| Sys.executable_name |] (env_with bindings)
    Unix.stdin Unix.stdout Unix.stderr

let rec waitpid pid =
  match Unix.waitpid [] pid with
  | _, st -> st
  | exception Unix.Unix_error (Unix.EINTR, _, _) -> waitpid pid

let expect_exit0 what pid =
  match waitpid pid with
  | Unix.WEXITED 0 -> ()
  | Unix.WEXITED n -> failwith (Printf.sprintf "%s exited with %d" what n)
  | Unix.WSIGNALED n | Unix.WSTOPPED n ->
      failwith (Printf.sprintf "%s killed by signal %d" what n)

let run_child role f =
  match f () with
  | () -> exit 0
  | exception e ->
      prerr_endline ("child " ^ role ^ ": " ^ Printexc.to_string e);
      exit 3
