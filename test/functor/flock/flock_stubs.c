/* flock(2) for test_wire: the unix backend proves an object's owner alive
   by an flock, which OCaml's Unix library does not offer (Unix.lockf is a
   different, fcntl lock). */
#include <sys/file.h>

#include <caml/mlvalues.h>

value vchan_test_flock(value fd) {
  return Val_bool(flock(Int_val(fd), LOCK_EX | LOCK_NB) == 0);
}
