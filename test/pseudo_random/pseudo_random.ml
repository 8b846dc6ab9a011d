let bytes ?(seed = 0x9E3779B97F4A7C15L) n =
  let b = Bytes.create n in
  let s = ref seed in
  let next () =
    let x = !s in
    let x = Int64.logxor x (Int64.shift_left x 13) in
    let x = Int64.logxor x (Int64.shift_right_logical x 7) in
    let x = Int64.logxor x (Int64.shift_left x 17) in
    s := x;
    x
  in
  let words = n / 8 in
  for i = 0 to words - 1 do
    Bytes.set_int64_le b (i * 8) (next ())
  done;
  for i = words * 8 to n - 1 do
    Bytes.set_uint8 b i (Int64.to_int (next ()) land 0xff)
  done;
  b
