#!/usr/bin/env bash
# The Rust crates of Cargo.lock as opam extra-sources, so that `opam pin add`
# from a git checkout (or an opam repository entry) builds in opam's sandbox
# with no network: opam downloads each crate from crates.io with the lock
# file's checksum before the build; scripts/opam-vendor.sh then unpacks them
# into vendor/ for cargo.
#   vchan-rs       builds the freestanding archive only: opam-vendor.sh narrows
#                  the Cargo workspace to its crates (--members), so it lists
#                  the crates.io crates these need to build (none today)
#   vchan-rs-unix  builds in the whole workspace, which cargo resolves with
#                  every dev-dependency: every crate of Cargo.lock
#   usage: opam-crates.sh --write         rewrite the block in each PKG.opam.template
#          opam-crates.sh --check         fail if a block and Cargo.lock differ
#          opam-crates.sh --list          print "FILE SHA256" per crate of Cargo.lock
#          opam-crates.sh --members PKG   the Cargo packages PKG's build needs
#                                         (under rust/; none: the whole workspace)
# The block sits between the lines "# crates: begin" and "# crates: end".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
packages="vchan-rs vchan-rs-unix"

members() {
    case $1 in
        vchan-rs) echo vchan-core vchan-freestanding ;;
        vchan-rs-unix) ;;
        *) echo "opam-crates: no package $1" >&2; return 2 ;;
    esac
}

# NAME VERSION SHA256 for every crates.io package of Cargo.lock.
crates() {
    awk '
        /^\[\[package\]\]/ { if (name != "" && src ~ /^registry\+/) print name, ver, sum; name = ""; ver = ""; src = ""; sum = "" }
        /^name = /     { gsub(/"/, "", $3); name = $3 }
        /^version = /  { gsub(/"/, "", $3); ver = $3 }
        /^source = /   { gsub(/"/, "", $3); src = $3 }
        /^checksum = / { gsub(/"/, "", $3); sum = $3 }
        END { if (name != "" && src ~ /^registry\+/) print name, ver, sum }
    ' Cargo.lock
}

# NAME VERSION SHA256 for the crates.io packages PKG's build needs: those of
# its Cargo packages' normal and build dependencies, on every target.
package_crates() {
    local m want
    m=$(members "$1")
    if [ -z "$m" ]; then crates; return; fi
    # shellcheck disable=SC2046
    want=$(cargo tree --locked --quiet -e normal,build --target all --prefix none \
        $(printf -- '-p %s ' $m) | awk 'NF && $3 !~ /^\(\// { print $1, substr($2, 2) }' | sort -u)
    crates | while read -r name ver sum; do
        if grep -qxF "$name $ver" <<< "$want"; then echo "$name $ver $sum"; fi
    done
}

block() {
    echo "# crates: begin (scripts/opam-crates.sh --write, from Cargo.lock)"
    package_crates "$1" | while read -r name ver sum; do
        printf 'extra-source "crate-%s-%s.crate" {\n' "$name" "$ver"
        printf '  src: "https://crates.io/api/v1/crates/%s/%s/download"\n' "$name" "$ver"
        printf '  checksum: "sha256=%s"\n}\n' "$sum"
    done
    echo "# crates: end"
}

current() { sed -n '/^# crates: begin/,/^# crates: end/p' "$1.opam.template"; }

case ${1:-} in
    --list) crates | while read -r name ver sum; do echo "crate-$name-$ver.crate $sum"; done ;;
    --members) members "${2:?usage: $0 --members PKG}" ;;
    --write)
        for pkg in $packages; do
            template=$pkg.opam.template
            tmp=$(mktemp)
            b=$(block "$pkg")
            {
                sed '/^# crates: begin/,$d' "$template"
                echo "$b"
                sed '1,/^# crates: end/d' "$template"
            } > "$tmp"
            mv "$tmp" "$template"
            echo "opam-crates: $(grep -c '^extra-source ' <<< "$b") crates in $template (run dune build $pkg.opam)"
        done
        ;;
    --check)
        for pkg in $packages; do
            if [ "$(current "$pkg")" != "$(block "$pkg")" ]; then
                echo "opam-crates: the extra-sources of $pkg.opam.template differ from Cargo.lock;" \
                    "run: bash scripts/opam-crates.sh --write && dune build $pkg.opam" >&2
                exit 1
            fi
        done
        ;;
    *) echo "usage: $0 --write | --check | --list | --members PKG" >&2; exit 2 ;;
esac
