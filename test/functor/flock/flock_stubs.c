/* What test_wire needs of Linux that OCaml's Unix library does not offer:
   flock(2), the unix backend's proof that an object's owner lives (Unix.lockf
   is a different, fcntl lock), and a sealed memfd, the backend's shared
   pages. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <caml/fail.h>
#include <caml/mlvalues.h>

value vchan_test_flock(value fd) {
  return Val_bool(flock(Int_val(fd), LOCK_EX | LOCK_NB) == 0);
}

/* A memfd of [len] bytes that can never shrink or grow. */
value vchan_test_sealed_memfd(value len) {
  int fd = memfd_create("vchan-test-gnt", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) caml_failwith("memfd_create");
  if (ftruncate(fd, Long_val(len)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    close(fd);
    caml_failwith("sealing a memfd");
  }
  return Val_int(fd);
}
