#!/usr/bin/env bash
# Link rust/xensim's static library into libxensim.so with the symbol
# versions Debian's Xen 4.17 binaries require, and name it after the four
# Xen libraries it replaces.
#   usage: scripts/link-xensim.sh [CARGO_TARGET_DIR]   (default: ./target)
#   input:  <target>/release/libxensim.a   (cargo build --release -p xensim)
#   output: <target>/release/xensim/{libxensim.so, libxengnttab.so.1,
#           libxenevtchn.so.1, libxenstore.so.4, libxenctrl.so.4.17}
# Idempotent: relinks only when the archive is newer than the library.
set -euo pipefail

target=${1:-target}
lib="$target/release/libxensim.a"
out="$target/release/xensim"
so="$out/libxensim.so"

if [ ! -f "$lib" ]; then
    echo "link-xensim: $lib not found; run: cargo build --release -p xensim" >&2
    exit 1
fi
mkdir -p "$out"

if [ ! -f "$so" ] || [ "$lib" -nt "$so" ] || [ "$0" -nt "$so" ]; then
    script=$(mktemp "$out/.vers.XXXXXX")
    tmp=$(mktemp "$out/.libxensim.XXXXXX")
    trap 'rm -f "$script" "$tmp"' EXIT
    cat > "$script" <<'VERS'
VERS_1.0 {
    global:
        xengnttab_*;
        xengntshr_*;
        xenevtchn_*;
    local:
        *;
};
VERS_4.0 {
    global:
        xs_*;
};
VERS_4.17.0 {
    global:
        xc_*;
};
VERS
    cc -shared -o "$tmp" -Wl,-soname,libxensim.so \
        -Wl,--version-script="$script" \
        -Wl,--whole-archive "$lib" -Wl,--no-whole-archive \
        -lpthread -ldl -lm
    mv -f "$tmp" "$so"
fi

for name in libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4 libxenctrl.so.4.17; do
    ln -sfn libxensim.so "$out/$name"
done
