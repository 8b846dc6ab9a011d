#!/usr/bin/env bash
# Each package's opam file (vchan-rs.opam, vchan-rs-unix.opam,
# vchan-rs-xen.opam): what dune generates from dune-project (+ the
# templates), `opam lint` clean (no opam repository needed); the Rust
# packages' extra-sources are the crates of Cargo.lock they need
# (scripts/opam-crates.sh), and their messages name the Rust version of
# Cargo.toml's rust-version.
set -euo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0
check() {
    if "${@:2}"; then passed=$((passed + 1)); echo "opam: ok: $1"
    else failed=$((failed + 1)); echo "opam: FAILED: $1"; fi
}
generated() {
    cp "$1" "$tmp/before"
    dune build "$1" 2> "$tmp/log" || { cat "$tmp/log"; return 1; }
    cmp -s "$1" "$tmp/before" || { diff "$tmp/before" "$1"; return 1; }
}
lint() {
    out=$(opam lint "$1" 2>&1 | grep -v 'Running as root is not recommended') || true
    echo "$out"
    grep -q "Passed\.$" <<< "$out" && ! grep -qi "warning\|error" <<< "$out"
}
rust() {
    want=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
    grep -q "Rust >= $want (rust-version in Cargo.toml)" vchan-rs.opam.template &&
        grep -q "Rust >= $want (rust-version in Cargo.toml)" vchan-rs-unix.opam.template &&
        [ "$(grep -c "Rust >= $want (the workspace's rust-version)" dune-project)" -eq 2 ]
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for opam in vchan-rs.opam vchan-rs-unix.opam vchan-rs-xen.opam; do
    check "$opam is dune's (generate_opam_files)" generated "$opam"
    check "opam lint $opam" lint "$opam"
done
check "the opam files' extra-sources are the crates of Cargo.lock they need" bash scripts/opam-crates.sh --check
check "the Rust version of opam's messages and the descriptions is Cargo.toml's rust-version" rust
if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $passed passed; $failed failed"
[ "$failed" -eq 0 ]
