#!/usr/bin/env bash
# build-archive.sh for the bare-metal x86_64 target a unikernel links
# (ocaml/dune's rule for contexts other than the default one), then the
# archive is made one object that exports only its C ABI (vchan_fs_*).
#
# Cargo's archive carries core and compiler_builtins, whose weak memcpy,
# memset and memcmp (and soft-float and 128-bit intrinsics) would otherwise
# replace nolibc's for the whole unikernel whenever the archive comes first
# in the link. A partial link (ld -r) binds the crate's own calls to the
# members it needs, then every symbol but vchan_fs_* is made local: the Rust
# code keeps the mem* it was built with, and the rest of the unikernel keeps
# its C library's. Measured in docs/mirage.md ("mem* in the unikernel").
set -euo pipefail
target_dir=$1
bash "$(dirname "$0")/build-archive.sh" "$target_dir" x86_64-unknown-none
a="$target_dir/release/freestanding-ocaml-x86_64-unknown-none/libvchan_freestanding.a"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$a")
obj="$tmp/vchan_freestanding.o"
ld -r -o "$obj" "$tmp"/vchan_freestanding-*.o "$tmp"/vchan_core-*.o "$a"
# Without the embedded LLVM bitcode (.llvmbc, .llvmcmd: of no use to a
# unikernel's link), which an older LLVM's linker plugin, loaded by GNU ar
# from /usr/lib/bfd-plugins (Debian 12 with llvm-14), aborts on.
objcopy --wildcard --keep-global-symbol='vchan_fs_*' \
    --remove-section=.llvmbc --remove-section=.llvmcmd "$obj"
leaks=$(readelf -sW "$obj" | awk '$7 != "UND" && ($5 == "GLOBAL" || $5 == "WEAK") && $8 !~ /^vchan_fs_/ { print $8 }')
undefined=$(readelf -sW "$obj" | awk '$7 == "UND" && $8 != "" { print $8 }')
if [ -n "$leaks$undefined" ]; then
    echo "build-archive-bare.sh: the archive's object exports ${leaks:-nothing else} and needs ${undefined:-nothing}" >&2
    exit 1
fi
rm -f "$a"
ar rcs "$a" "$obj"
