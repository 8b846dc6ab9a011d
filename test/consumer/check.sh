#!/usr/bin/env bash
# The consumer of vchan-rs alone: it runs, and nothing that only the opam
# package vchan-rs-unix needs was linked into it: no code of the unix or
# threads libraries (OCaml stubs unix_*/caml_unix_*, caml_thread_*), of
# cmdliner (camlCmdliner*), of the std stubs of rust/vchan-lwt-stubs (vchan_rs_*,
# boxroot_*, Rust's std) or of xensim (xensim_*, Xen's xengnttab_*,
# xenevtchn_*, xs_*); no shared library of theirs is needed (ldd). The names
# the OCaml runtime itself defines (OCaml 5's caml_unix_random_seed) are not
# the unix library's. Each LIBRARY given (an archive or a shared object, e.g.
# the installed libvchan_rs_stubs.a or xensim's libraries) must share no
# defined symbol with the consumer, but Rust's own (mangled _R*/_ZN* names
# and rust_*: the freestanding archive has Rust's core too). With --meta,
# the library's findlib closure (ocamlfind query -r, from the directory
# that holds vchan-rs/META) names none of unix, threads, cmdliner,
# vchan-rs-unix.
#   usage: check.sh [--meta VCHAN_RS_META] CONSUMER_EXE LIBASMRUN_A [LIBRARY...]
set -u
findlib=
if [ "$1" = --meta ]; then findlib=$(cd "$(dirname "$2")/.." && pwd); shift 2; fi
exe=$(realpath "$1")
runtime=$2
shift 2
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
defined() { readelf -sW --dyn-syms "$1" | awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") { sub(/@.*/, "", $8); print $8 }' | sort -u; }
runs() { [ "$("$exe")" = "consumer: ok" ] || { echo "consumer: wrong output" >&2; return 1; }; }
nothing_of_unix() {
  local bad own
  own=$(defined "$runtime" | grep '^caml_')
  [ -n "$own" ] || { echo "no caml_ symbols in $runtime" >&2; return 1; }
  bad=$(defined "$exe" |
    grep -E '^(unix_(fork|socket|select|read)|caml_unix_|caml_thread_initialize|camlCmdliner|vchan_rs_|boxroot_|_ZN3std|_R.*3std|xensim_|xengnttab_|xenevtchn_|xs_)' |
    comm -23 - <(printf '%s\n' "$own") | head -5)
  [ -z "$bad" ] || { echo "consumer links code of unix, threads, cmdliner, the std stubs or xensim: $bad" >&2; return 1; }
}
no_shared_library() {
  local bad
  bad=$(ldd "$exe" | grep -E 'libxen|xensim|vchan_rs_stubs|libdl\.so|libpthread' || true)
  [ -z "$bad" ] || { echo "consumer needs $bad" >&2; return 1; }
}
nothing_of() {
  local common
  common=$(comm -12 <(defined "$exe") <(defined "$1") | grep -vE '^(_R|_ZN|_?rust_|__rust)' | head -5)
  [ -z "$common" ] || { echo "consumer defines symbols of $1: $common" >&2; return 1; }
}
closure() {
  local libs bad
  libs=$(OCAMLPATH=$findlib ocamlfind query -r -format %p vchan-rs) || return 1
  grep -qx vchan-rs <<< "$libs" || { echo "vchan-rs not in its own closure: $libs" >&2; return 1; }
  bad=$(grep -E '^(unix|threads.*|cmdliner|vchan-rs-unix)$' <<< "$libs")
  [ -z "$bad" ] || { echo "vchan-rs requires" $bad >&2; return 1; }
}
has_vchan() { defined "$exe" | grep -q '^vchan_fs_ml_write$' || { echo "no vchan externals" >&2; return 1; }; }
check runs
check nothing_of_unix
check no_shared_library
for lib in "$@"; do check nothing_of "$lib"; done
[ -z "$findlib" ] || check closure
check has_vchan
echo "test result: $([ $failed = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed"
[ $failed = 0 ]
