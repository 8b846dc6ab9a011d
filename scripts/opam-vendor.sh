#!/usr/bin/env bash
# An opam build step: unpack the crates opam downloaded as extra-sources
# (crate-NAME-VERSION.crate in the build directory; scripts/opam-crates.sh
# lists them in the opam file) into vendor/, and make cargo read vendor/ and
# never the network (.cargo/config.toml), as the release tarball does.
# Does nothing when no crate file is present (a release tarball carries
# vendor/ already; a developer's checkout uses the network or cargo's cache).
# Fails when only some are present: cargo would fail later, less clearly.
#   usage (from the source root): bash scripts/opam-vendor.sh
set -euo pipefail
want=$(bash scripts/opam-crates.sh --list | wc -l)
have=$(ls crate-*.crate 2> /dev/null | wc -l)
[ "$have" -gt 0 ] || exit 0
if [ "$have" -ne "$want" ]; then
    echo "opam-vendor: $have crate files here, Cargo.lock has $want" >&2
    exit 1
fi
mkdir -p vendor .cargo
bash scripts/opam-crates.sh --list | while read -r file sum; do
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
echo "opam-vendor: $want crates unpacked into vendor/"
