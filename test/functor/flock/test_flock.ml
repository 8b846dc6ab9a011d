external lock : Unix.file_descr -> bool = "vchan_test_flock"
external sealed_memfd : int -> Unix.file_descr = "vchan_test_sealed_memfd"
