#!/usr/bin/env bash
# make release: a source tarball that builds with no network.
#   bash scripts/release.sh [OUT_DIR]        (default dist/)
# Writes OUT_DIR/vchan-rs-VERSION.tar.gz: the files git tracks in this
# checkout (as they are in the work tree), plus every crate of Cargo.lock
# vendored under vendor/ (`cargo vendor`, all of the workspace's crates:
# cargo resolves dev-dependencies too) and a .cargo/config.toml that makes
# cargo read them and never the network. Needs the crates once (from
# crates.io or a warm cargo cache); prints the tarball's path.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

version=$(sed -n 's/^(version \([^)]*\))$/\1/p' dune-project)
[ -n "$version" ] || { echo "release: no (version ...) in dune-project" >&2; exit 1; }
name=vchan-rs-$version
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

stage=$(mktemp -d "${TMPDIR:-/tmp}/vchan-release.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"

# Tracked files, as in the work tree (deleted ones left out).
git ls-files -z | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$stage/$name"

(
    cd "$stage/$name"
    cargo vendor --locked --versioned-dirs --quiet vendor > /dev/null
    mkdir -p .cargo
    cp scripts/vendored-config.toml .cargo/config.toml
)

mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
    -czf "$out/$name.tar.gz.tmp" "$name"
mv -f "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "release: $out/$name.tar.gz ($(du -h "$out/$name.tar.gz" | cut -f1), $(ls "$stage/$name/vendor" | wc -l) crates vendored)"
