#!/usr/bin/env bash
# Link rust/xensim's static library into libxensim.so with the symbol
# versions Debian's Xen 4.17 binaries require, and name it after the four
# Xen libraries it replaces.
#   usage: scripts/link-xensim.sh [CARGO_TARGET_DIR [ARCHIVE [OUT_DIR]]]
#   input:  ARCHIVE, default <target>/release/libxensim.a
#           (from cargo build --release -p xensim)
#   output: OUT_DIR, default <target>/release/xensim/: libxensim.so and the
#           symlinks libxengnttab.so.1, libxenevtchn.so.1, libxenstore.so.4,
#           libxenctrl.so.4.17
# Idempotent: relinks only when the archive or this script changed.
set -euo pipefail

target=${1:-target}
lib=${2:-$target/release/libxensim.a}
out=${3:-$target/release/xensim}
so="$out/libxensim.so"

if [ ! -f "$lib" ]; then
    echo "link-xensim: $lib not found; run: cargo build --release -p xensim" >&2
    exit 1
fi
mkdir -p "$out"

# Relink when the archive (path, size, mtime) or this script changed.
stamp="$out/.stamp"
want="$(stat -L -c '%n %s %Y' "$lib") $(stat -L -c '%s %Y' "$0")"
if [ ! -f "$so" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
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
    chmod 755 "$tmp"
    mv -f "$tmp" "$so"
    printf '%s\n' "$want" > "$stamp"
fi

for name in libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4 libxenctrl.so.4.17; do
    # Replace atomically, and only if needed: programs may be starting.
    if [ "$(readlink "$out/$name" || true)" != libxensim.so ]; then
        ln -sfn libxensim.so "$out/.$name.new"
        mv -fT "$out/.$name.new" "$out/$name"
    fi
done
