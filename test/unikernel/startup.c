/* The unikernel's entry point and clock. Solo5 calls solo5_app_main: it
 * sets up nolibc (its heap for malloc, thread-local storage) over the
 * memory Solo5 gives us, then runs the OCaml program, which exits through
 * nolibc's exit (solo5_exit) with its status. */
#include <solo5.h>

#define CAML_NAME_SPACE
#include <caml/alloc.h>
#include <caml/callback.h>
#include <caml/mlvalues.h>

/* nolibc's set-up (ocaml-solo5's nolibc/sysdeps_solo5.c); it has no
 * public prototype. */
void _nolibc_init(uintptr_t heap_start, size_t heap_size);

static char *argv[] = { "vchan-unikernel", NULL };

int solo5_app_main(const struct solo5_start_info *si)
{
    _nolibc_init(si->heap_start, si->heap_size);
    caml_startup(argv);
    return 0;
}

/* Solo5's monotonic clock, in seconds. */
value vchan_unikernel_now(value unit)
{
    (void)unit;
    return caml_copy_double((double)solo5_clock_monotonic() / 1e9);
}
