external lock : Unix.file_descr -> bool = "vchan_test_flock"
