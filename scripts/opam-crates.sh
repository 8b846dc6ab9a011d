#!/usr/bin/env bash
# The Rust crates of Cargo.lock as opam extra-sources, so that `opam pin add`
# from a git checkout (or an opam repository entry) builds in opam's sandbox
# with no network: opam downloads each crate from crates.io with the lock
# file's checksum before the build; scripts/opam-vendor.sh then unpacks them
# into vendor/ for cargo. Every crate of Cargo.lock is listed, dev-only ones
# too: cargo resolves the whole workspace, dev-dependencies included.
#   usage: opam-crates.sh --write   rewrite the block in vchan-rs.opam.template
#          opam-crates.sh --check   fail if the block and Cargo.lock differ
#          opam-crates.sh --list    print "FILE SHA256" per crate
# The block sits between the lines "# crates: begin" and "# crates: end".
set -euo pipefail
cd "$(dirname "$0")/.."
template=vchan-rs.opam.template

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

block() {
    echo "# crates: begin (scripts/opam-crates.sh --write, from Cargo.lock)"
    crates | while read -r name ver sum; do
        printf 'extra-source "crate-%s-%s.crate" {\n' "$name" "$ver"
        printf '  src: "https://crates.io/api/v1/crates/%s/%s/download"\n' "$name" "$ver"
        printf '  checksum: "sha256=%s"\n}\n' "$sum"
    done
    echo "# crates: end"
}

current() { sed -n '/^# crates: begin/,/^# crates: end/p' "$template"; }

case ${1:-} in
    --list) crates | while read -r name ver sum; do echo "crate-$name-$ver.crate $sum"; done ;;
    --write)
        tmp=$(mktemp)
        {
            sed '/^# crates: begin/,$d' "$template"
            block
            sed '1,/^# crates: end/d' "$template"
        } > "$tmp"
        mv "$tmp" "$template"
        echo "opam-crates: $(crates | wc -l) crates in $template (run dune build vchan-rs.opam)"
        ;;
    --check)
        if [ "$(current)" != "$(block)" ]; then
            echo "opam-crates: the extra-sources of $template differ from Cargo.lock;" \
                "run: bash scripts/opam-crates.sh --write && dune build vchan-rs.opam" >&2
            exit 1
        fi
        ;;
    *) echo "usage: $0 --write | --check | --list" >&2; exit 2 ;;
esac
