#!/usr/bin/env bash
# Build the freestanding archive for the OCaml library vchan-rs: run by
# ocaml/dune through scripts/dune-cargo.sh (--then), from the workspace root.
#   build-archive.sh TARGET_DIR [TRIPLE]
# Leaves TARGET_DIR/release/freestanding-ocaml/ (host; with
# dllvchan_freestanding.so for bytecode) or
# TARGET_DIR/release/freestanding-ocaml-TRIPLE/ (a cross build for a
# unikernel's target, e.g. x86_64-unknown-none) holding
# libvchan_freestanding.a.
#
# For the host, the archive's panic handler and personality routine are made
# weak: an OCaml program that also links vchan-rs-unix has Rust's std
# (from rust/vchan-lwt-stubs) too, whose strong definitions must win; two Rust
# static libraries otherwise clash on these two symbols.
set -euo pipefail
target_dir=$1 triple=${2:-}
export PATH="$HOME/.cargo/bin:$PATH"
args=(rustc --quiet --locked -p vchan-freestanding --lib --crate-type staticlib
      --profile freestanding --target-dir "$target_dir")
if [ -n "$triple" ]; then
  out="$target_dir/release/freestanding-ocaml-$triple"
  mkdir -p "$out"
  cargo "${args[@]}" --target "$triple"
  cp "$target_dir/$triple/freestanding/libvchan_freestanding.a" "$out/"
  exit 0
fi
out="$target_dir/release/freestanding-ocaml"
mkdir -p "$out"
cargo "${args[@]}"
a="$out/libvchan_freestanding.a"
cp "$target_dir/freestanding/libvchan_freestanding.a" "$a"
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
