type t = string

let valid_char = function
  | 'a' .. 'z' | 'A' .. 'Z' | '0' .. '9' | '_' | '-' -> true
  | _ -> false

let of_string s =
  let rec ok i = i = String.length s || (valid_char s.[i] && ok (i + 1)) in
  if s <> "" && ok 0 then Ok s
  else
    Error
      (`Msg
        (Printf.sprintf
           "invalid vchan port %S: expected one or more of [a-zA-Z0-9_-]" s))

let to_string t = t
