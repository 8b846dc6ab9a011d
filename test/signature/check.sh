#!/bin/sh
# Compile-time signature checks, counted as tests:
#   1. signature_check.ml (Vchan_rs against Mirage_flow.S, Vchan.S.ENDPOINT,
#      Vchan_lwt_unix, as documented) compiles;
#   2. signature_mismatch.ml (a signature Vchan_rs.Port lacks) does not, and
#      the compiler names the missing value.
#   usage: check.sh VCHAN_RS_CMI LWT_UNIX_CMI
set -u
inc="-I $(dirname "$1") -I $(dirname "$2")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
compile() {
    # shellcheck disable=SC2086
    ocamlfind ocamlc -package lwt,lwt.unix,cstruct $inc -c -o "$out/$(basename "$1" .ml)" "$1" \
        > "$out/log" 2>&1
}
passed=0 failed=0
if compile signature_check.ml; then
    passed=$((passed + 1)); echo "ok: signature_check.ml compiles"
else
    failed=$((failed + 1)); echo "FAILED: signature_check.ml does not compile:"; cat "$out/log"
fi
if compile signature_mismatch.ml; then
    failed=$((failed + 1)); echo "FAILED: signature_mismatch.ml compiled: the checks check nothing"
elif grep -q "not_in_vchan_rs" "$out/log" && grep -q "is required but not provided" "$out/log"; then
    passed=$((passed + 1)); echo "ok: signature_mismatch.ml is refused (not_in_vchan_rs required but not provided)"
else
    failed=$((failed + 1)); echo "FAILED: signature_mismatch.ml failed for another reason:"; cat "$out/log"
fi
if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $passed passed; $failed failed"
[ "$failed" -eq 0 ]
