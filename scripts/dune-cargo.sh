#!/usr/bin/env bash
# Build one crate of the Cargo workspace for a dune rule and copy its
# outputs into the rule's build directory.
#   usage (from a rule's action): dune-cargo.sh ROOT PACKAGE [--then SCRIPT] [FILE=DEST]...
#   ROOT     the Cargo workspace, relative to the rule's own directory (e.g. ..)
#   PACKAGE  cargo build --release --locked -p PACKAGE, target dir ROOT/target
#   SCRIPT   then run `bash ROOT/SCRIPT ROOT/target` (e.g. scripts/link-xensim.sh)
#   FILE     copied from ROOT/target/release/FILE to DEST (in the build directory)
# Cargo runs in the source tree, not in dune's copy of it (which drops
# dot-files that vendored crates' checksums cover): the rule's source
# directory is found from dune's DUNE_SOURCEROOT and INSIDE_DUNE, so this
# works wherever the project sits in a dune workspace (e.g. duniverse/).
# Running in ROOT also makes cargo read ROOT/.cargo/config.toml (the release
# tarball's vendored crates).
set -euo pipefail

root_rel=$1 package=$2
shift 2
then=
if [ "${1:-}" = --then ]; then then=$2; shift 2; fi

out=$PWD
if [ -z "${DUNE_SOURCEROOT:-}" ] || [ -z "${INSIDE_DUNE:-}" ]; then
    echo "dune-cargo: run me from a dune rule (DUNE_SOURCEROOT and INSIDE_DUNE unset)" >&2
    exit 2
fi
case $out in
    "$INSIDE_DUNE") rel= ;;
    "$INSIDE_DUNE"/*) rel=${out#"$INSIDE_DUNE"/} ;;
    *) echo "dune-cargo: $out is not below the build context $INSIDE_DUNE" >&2; exit 2 ;;
esac
root=$(cd "$DUNE_SOURCEROOT/$rel/$root_rel" && pwd)
[ -f "$root/Cargo.toml" ] || { echo "dune-cargo: no Cargo.toml in $root" >&2; exit 2; }

export PATH="$HOME/.cargo/bin:$PATH"
cd "$root"
cargo build --release --locked --quiet -p "$package" --target-dir "$root/target"
if [ -n "$then" ]; then bash "$root/$then" "$root/target"; fi
for spec in "$@"; do
    cp "$root/target/release/${spec%%=*}" "$out/${spec#*=}"
done
