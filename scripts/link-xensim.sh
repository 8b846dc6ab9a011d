#!/usr/bin/env bash
# Link rust/xensim's static library into Xen's libraries, with their
# sonames and the symbol versions Debian's Xen binaries require:
#   libxensim.so          the implementation, one object (one process-wide
#                         state: a grant share names an event channel port);
#                         its functions are renamed xensim_<name>
#   libxengnttab.so.1     xengnttab_* and xengntshr_*  @VERS_1.0
#   libxenevtchn.so.1     xenevtchn_*                  @VERS_1.0
#   libxenstore.so.4      xs_*                         @VERS_4.0
#   libxenctrl-xensim.so  xc_*, with the soname and version node of the
#                         installed Xen's libxenctrl (it has no stable ABI:
#                         libxenctrl.so.4.17 @VERS_4.17.0 on Debian 12,
#                         libxenctrl.so.4.20 @libxenctrl_4.20.0 on Debian
#                         13), read from it (ldconfig's cache) when linking;
#                         with no Xen installed, soname libxenctrl-xensim.so
#                         at XENSIM_XENCTRL (nothing installed needs it).
#                         vchan-xensim preloads it (its file name cannot
#                         follow the installed Xen: dune's rules name it),
#                         so it stands for libxenctrl.so.<version> by soname.
# The four are thin: each function is one jump to its xensim_ twin.
#   usage: scripts/link-xensim.sh [CARGO_TARGET_DIR [ARCHIVE [OUT_DIR]]]
#   input:  ARCHIVE, default <target>/release/libxensim.a
#           (from cargo build --release -p xensim)
#   output: OUT_DIR, default <target>/release/xensim/
# Idempotent: relinks only when the archive, this script or the installed
# libxenctrl changed.
set -euo pipefail

target=${1:-target}
lib=${2:-$target/release/libxensim.a}
out=${3:-$target/release/xensim}

if [ ! -f "$lib" ]; then
    echo "link-xensim: $lib not found; run: cargo build --release -p xensim" >&2
    exit 1
fi
mkdir -p "$out"

# The installed libxenctrl: its soname and (last) version node.
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
xenctrl=$("$ldconfig" -p 2> /dev/null |
    awk '$1 ~ /^libxenctrl[.]so[.][0-9]/ { print $NF }' | sort -V | tail -1)
ctrl_soname=libxenctrl-xensim.so ctrl_node=XENSIM_XENCTRL
if [ -n "$xenctrl" ]; then
    ctrl_soname=$(readelf -dW "$xenctrl" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
    ctrl_node=$(readelf -VW "$xenctrl" |
        sed -n '/^Version definition/,/^$/s/.*Flags: none .*Name: \([^ ]*\)$/\1/p' | tail -1)
    if [ -z "$ctrl_soname" ] || [ -z "$ctrl_node" ]; then
        echo "link-xensim: cannot read the soname and version of $xenctrl" >&2
        exit 1
    fi
fi

# Library file name, soname, version node, symbol prefixes.
libs=(
    "libxengnttab.so.1 libxengnttab.so.1 VERS_1.0 xengnttab_ xengntshr_"
    "libxenevtchn.so.1 libxenevtchn.so.1 VERS_1.0 xenevtchn_"
    "libxenstore.so.4 libxenstore.so.4 VERS_4.0 xs_"
    "libxenctrl-xensim.so $ctrl_soname $ctrl_node xc_"
)

case "$(uname -m)" in
    x86_64) jump='jmp %s@PLT' ;;
    aarch64) jump='b %s' ;;
    *) echo "link-xensim: no trampoline for $(uname -m)" >&2; exit 1 ;;
esac

stamp="$out/.stamp"
want="$(stat -L -c '%n %s %Y' "$lib") $(stat -L -c '%s %Y' "$0") $ctrl_soname $ctrl_node"
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
    read -r file soname node prefixes <<< "$spec"
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
    cc -shared -o "$work/$file" -Wl,-soname,"$soname" \
        -Wl,--version-script="$work/$file.map" "$work/$file.s" \
        -L"$work" -lxensim -Wl,-rpath,'$ORIGIN'
done

# Install atomically: programs may be starting.
for f in libxensim.so libxengnttab.so.1 libxenevtchn.so.1 libxenstore.so.4 libxenctrl-xensim.so; do
    chmod 755 "$work/$f"
    mv -fT "$work/$f" "$out/$f"
done
# A libxenctrl of an earlier layout (named by its soname) goes.
rm -f "$out"/libxenctrl.so.[0-9]*
printf '%s\n' "$want" > "$stamp"
