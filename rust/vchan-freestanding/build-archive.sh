#!/usr/bin/env bash
# Build the freestanding archive for the OCaml library vchan-rs (ocaml/dune).
#   build-archive.sh ROOT OUTDIR [TARGET]
# ROOT is the source tree (Cargo.toml, target/), OUTDIR gets
# libvchan_freestanding.a (and, for the host, dllvchan_freestanding.so).
# TARGET is a Rust target triple for a cross build (a unikernel's, e.g.
# x86_64-unknown-none); without it the archive is for this host.
#
# For the host, the archive's panic handler and personality routine are made
# weak: an OCaml program that also links vchan-rs.lwt-unix has Rust's std
# (from rust/vchan-ocaml) too, whose strong definitions must win; two Rust
# static libraries otherwise clash on these two symbols.
set -euo pipefail
root=$1 out=$2 target=${3:-}
export PATH="$HOME/.cargo/bin:$PATH"
args=(rustc --quiet --locked -p vchan-freestanding --lib --crate-type staticlib
      --profile freestanding --manifest-path "$root/Cargo.toml" --target-dir "$root/target")
if [ -n "$target" ]; then
  cargo "${args[@]}" --target "$target"
  cp "$root/target/$target/freestanding/libvchan_freestanding.a" "$out/libvchan_freestanding.a"
  exit 0
fi
cargo "${args[@]}"
a="$out/libvchan_freestanding.a"
cp "$root/target/freestanding/libvchan_freestanding.a" "$a"
weaken=()
while read -r sym; do weaken+=("--weaken-symbol=$sym"); done < <(
  readelf -sW "$a" | awk '$7 != "UND" && $5 == "GLOBAL" && ($8 ~ /rust_begin_unwind$/ || $8 == "rust_eh_personality") { print $8 }' | sort -u)
if [ ${#weaken[@]} -ne 2 ]; then
  echo "build-archive.sh: expected 2 symbols to weaken, found ${#weaken[@]}" >&2
  exit 1
fi
objcopy "${weaken[@]}" "$a"
# Bytecode loads the externals from a shared object.
cc -shared -o "$out/dllvchan_freestanding.so" -Wl,--whole-archive "$a" -Wl,--no-whole-archive
