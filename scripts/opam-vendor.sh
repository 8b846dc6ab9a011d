#!/usr/bin/env bash
# An opam build step, in opam's copy of the source:
#  1. unpack the crates opam downloaded as extra-sources (crate-NAME-VERSION.crate
#     in the build directory; scripts/opam-crates.sh lists them in the opam
#     files) into vendor/, and make cargo read vendor/ and never the network
#     (.cargo/config.toml), as the release tarball does. Nothing to unpack
#     when no crate file is present (a release tarball carries vendor/
#     already; vchan-rs needs no crates.io crate). Fails when the number of
#     crate files is not the opam file's: cargo would fail later, less clearly.
#  2. for a package that needs only some of the Cargo workspace (vchan-rs: the
#     freestanding archive; opam-crates.sh --members), narrow the workspace to
#     those crates, without their dev-dependencies (opam builds no Rust
#     test), and prune Cargo.lock to them, offline: cargo then resolves, and
#     can build, nothing else (not the std stubs, not xensim), and needs only
#     the crates the package lists.
#   usage (from the source root): bash scripts/opam-vendor.sh PKG
set -euo pipefail
pkg=${1:?usage: opam-vendor.sh PKG}
export PATH="$HOME/.cargo/bin:$PATH"
[ -f "$pkg.opam" ] || { echo "opam-vendor: no $pkg.opam here" >&2; exit 2; }
want=$(grep -c '^extra-source "crate-' "$pkg.opam" || true)
have=$(find . -maxdepth 1 -name 'crate-*.crate' | wc -l)
if [ "$have" -ne 0 ] && [ "$have" -ne "$want" ]; then
    echo "opam-vendor: $have crate files here, $pkg.opam lists $want" >&2
    exit 1
fi
if [ "$have" -gt 0 ]; then
    mkdir -p vendor .cargo
    bash scripts/opam-crates.sh --list | while read -r file sum; do
        [ -f "$file" ] || continue
        got=$(sha256sum "$file" | cut -d' ' -f1)
        [ "$got" = "$sum" ] || { echo "opam-vendor: $file: sha256 $got, Cargo.lock says $sum" >&2; exit 1; }
        dir=${file#crate-}
        dir=vendor/${dir%.crate}
        rm -rf "$dir"
        mkdir -p "$dir"
        tar -xzf "$file" -C "$dir" --strip-components=1 --no-same-owner
        # cargo checks the package's checksum against Cargo.lock; "files" may
        # be empty for a directory source.
        printf '{"files":{},"package":"%s"}\n' "$sum" > "$dir/.cargo-checksum.json"
    done
    cp scripts/vendored-config.toml .cargo/config.toml
    echo "opam-vendor: $have crates unpacked into vendor/"
fi

members=$(bash scripts/opam-crates.sh --members "$pkg")
[ -n "$members" ] || exit 0
# Narrowing rewrites Cargo.toml and Cargo.lock: only in a build copy (opam's,
# which sets OPAM_PACKAGE_NAME, or an unpacked release), never in a git
# checkout someone works in.
if [ -e .git ] && [ -z "${OPAM_PACKAGE_NAME:-}" ]; then
    echo "opam-vendor: $PWD is a git checkout, not a build copy: narrowing the workspace for $pkg would rewrite its Cargo.toml and Cargo.lock (opam sets OPAM_PACKAGE_NAME in its build copy)" >&2
    exit 2
fi
list=
for m in $members; do
    [ -f "rust/$m/Cargo.toml" ] || { echo "opam-vendor: no rust/$m/Cargo.toml" >&2; exit 1; }
    list="$list${list:+, }\"rust/$m\""
    awk '/^\[/ { drop = ($0 ~ /^\[(.*\.)?dev-dependencies\]$/) } !drop' "rust/$m/Cargo.toml" > "rust/$m/Cargo.toml.new"
    mv "rust/$m/Cargo.toml.new" "rust/$m/Cargo.toml"
done
awk -v list="$list" '
    /^members = \[/ { print "members = [" list "]"; skip = ($0 !~ /\]/); next }
    skip { if ($0 ~ /\]/) skip = 0; next }
    { print }' Cargo.toml > Cargo.toml.new
mv Cargo.toml.new Cargo.toml
grep -qxF "members = [$list]" Cargo.toml || { echo "opam-vendor: no members list in Cargo.toml" >&2; exit 1; }
# cargo prunes Cargo.lock to what the narrowed workspace uses (versions kept).
cargo metadata --offline --format-version 1 > /dev/null
echo "opam-vendor: the Cargo workspace narrowed to $members for $pkg"
