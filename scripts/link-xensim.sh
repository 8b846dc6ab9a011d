#!/usr/bin/env bash
# Link rust/xensim's static library into Xen's four libraries, with their
# sonames and the symbol versions Debian's Xen 4.17 binaries require:
#   libxensim.so         the implementation, one object (one process-wide
#                        state: a grant share names an event channel port);
#                        its functions are renamed xensim_<name>
#   libxengnttab.so.1    xengnttab_* and xengntshr_*  @VERS_1.0
#   libxenevtchn.so.1    xenevtchn_*                  @VERS_1.0
#   libxenstore.so.4     xs_*                         @VERS_4.0
#   libxenctrl.so.4.17   xc_*                         @VERS_4.17.0
# The four are thin: each function is one jump to its xensim_ twin.
#   usage: scripts/link-xensim.sh [CARGO_TARGET_DIR [ARCHIVE [OUT_DIR]]]
#   input:  ARCHIVE, default <target>/release/libxensim.a
#           (from cargo build --release -p xensim)
#   output: OUT_DIR, default <target>/release/xensim/
# Idempotent: relinks only when the archive or this script changed.
set -euo pipefail

target=${1:-target}
lib=${2:-$target/release/libxensim.a}
out=${3:-$target/release/xensim}

if [ ! -f "$lib" ]; then
    echo "link-xensim: $lib not found; run: cargo build --release -p xensim" >&2
    exit 1
fi
mkdir -p "$out"

# Library file name, soname, version node, symbol prefixes.
libs=(
    "libxengnttab.so.1 VERS_1.0 xengnttab_ xengntshr_"
    "libxenevtchn.so.1 VERS_1.0 xenevtchn_"
    "libxenstore.so.4 VERS_4.0 xs_"
    "libxenctrl.so.4.17 VERS_4.17.0 xc_"
)

case "$(uname -m)" in
    x86_64) jump='jmp %s@PLT' ;;
    aarch64) jump='b %s' ;;
    *) echo "link-xensim: no trampoline for $(uname -m)" >&2; exit 1 ;;
esac

stamp="$out/.stamp"
want="$(stat -L -c '%n %s %Y' "$lib") $(stat -L -c '%s %Y' "$0")"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$out/libxensim.so" ]; then
    exit 0
fi

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The Xen functions the archive defines.
nm --defined-only -g "$lib" 2>/dev/null \
    | awk '$2 == "T" && $3 ~ /^(xengnttab_|xengntshr_|xenevtchn_|xs_|xc_)/ { print $3 }' \
    | sort -u > "$work/names"
[ -s "$work/names" ] || { echo "link-xensim: no Xen functions in $lib" >&2; exit 1; }

# The implementation: every Xen function renamed xensim_<name>.
awk '{ print $1, "xensim_" $1 }' "$work/names" > "$work/rename"
objcopy --redefine-syms="$work/rename" "$lib" "$work/libxensim.a"
printf 'XENSIM_1 {\n    global:\n        xensim_*;\n    local:\n        *;\n};\n' > "$work/core.map"
cc -shared -o "$work/libxensim.so" -Wl,-soname,libxensim.so \
    -Wl,--version-script="$work/core.map" \
    -Wl,--whole-archive "$work/libxensim.a" -Wl,--no-whole-archive \
    -lpthread -ldl -lm

# The four thin libraries.
for spec in "${libs[@]}"; do
    read -r file node prefixes <<< "$spec"
    pattern="^($(echo "$prefixes" | tr ' ' '|'))"
    grep -E "$pattern" "$work/names" > "$work/$file.names" || true
    [ -s "$work/$file.names" ] || { echo "link-xensim: nothing for $file" >&2; exit 1; }
    {
        echo '    .text'
        while read -r name; do
            printf '    .globl %s\n    .type %s, %%function\n    .p2align 4\n%s:\n    ' \
                "$name" "$name" "$name"
            # shellcheck disable=SC2059
            printf "$jump\n" "xensim_$name"
            printf '    .size %s, .-%s\n' "$name" "$name"
        done < "$work/$file.names"
        echo '    .section .note.GNU-stack,"",%progbits'
    } > "$work/$file.s"
    {
        printf '%s {\n    global:\n' "$node"
        sed 's/^/        /; s/$/;/' "$work/$file.names"
        printf '    local:\n        *;\n};\n'
    } > "$work/$file.map"
    cc -shared -o "$work/$file" -Wl,-soname,"$file" \
        -Wl,--version-script="$work/$file.map" "$work/$file.s" \
        -L"$work" -lxensim -Wl,-rpath,'$ORIGIN'
done

# Install atomically: programs may be starting.
for f in libxensim.so libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4 libxenctrl.so.4.17; do
    chmod 755 "$work/$f"
    mv -fT "$work/$f" "$out/$f"
done
printf '%s\n' "$want" > "$stamp"
