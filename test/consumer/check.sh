#!/usr/bin/env bash
# The consumer of vchan-rs alone: it runs, and no code of the unix or threads
# libraries (OCaml stubs unix_*/caml_unix_*, caml_thread_*) nor Rust's std
# (from rust/vchan-ocaml) was linked into it. The names the OCaml runtime
# itself defines (OCaml 5's caml_unix_random_seed) are not the unix
# library's.
#   usage: check.sh CONSUMER_EXE LIBASMRUN_A
set -u
exe=$(realpath "$1")
runtime=$2
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
runs() { [ "$("$exe")" = "consumer: ok" ] || { echo "consumer: wrong output" >&2; return 1; }; }
no_unix() {
  local bad own
  own=$(readelf -sW "$runtime" | awk '$7 != "UND" && $8 ~ /^caml_/ { print $8 }' | sort -u)
  [ -n "$own" ] || { echo "no caml_ symbols in $runtime" >&2; return 1; }
  bad=$(readelf -sW "$exe" | awk '{print $8}' |
    grep -E '^(unix_(fork|socket|select|read)|caml_unix_|caml_thread_initialize|_ZN3std)' | sort -u |
    comm -23 - <(printf '%s\n' "$own") | head -5)
  [ -z "$bad" ] || { echo "consumer links unix/threads/std code: $bad" >&2; return 1; }
}
has_vchan() { readelf -sW "$exe" | grep -q 'vchan_fs_ml_write$' || { echo "no vchan externals" >&2; return 1; }; }
check runs
check no_unix
check has_vchan
echo "test result: $([ $failed = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed"
[ $failed = 0 ]
