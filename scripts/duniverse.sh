#!/usr/bin/env bash
# Unpack pinned upstream sources into a scratch duniverse, as opam-monorepo
# would, for a dune workspace that builds them from source.
#   usage: duniverse.sh DEST NAME...
#   NAME   a tarball of the thirdparty directory, without .tar.gz
#          (e.g. lwt ocaml-cstruct); it becomes DEST/NAME/.
#   DEST   made if missing. Other entries of DEST are left alone.
# Thirdparty directory: $VCHAN_RS_THIRDPARTY, default <project>/../shared/thirdparty
# (its README.md lists each tarball's repository and commit).
# Each DEST/NAME is keyed by its tarball's sha256 (DEST/NAME/.duniverse-key):
# unchanged tarballs are not unpacked again; a changed one replaces the whole
# directory (so files added to DEST/NAME after unpacking must be added again).
# A tarball that is missing is fetched instead, at the commit the README's
# table gives, with git from GitHub (a shallow fetch of that one commit),
# when the README is there and the network allows; else the script stops,
# naming what is missing. (solo5.tar.gz is a release-style tarball, not a
# plain git archive: it is not a duniverse source.)
# Prints DEST's absolute path.
set -euo pipefail

[ $# -ge 2 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
project=$(cd "$(dirname "$0")/.." && pwd)
thirdparty=${VCHAN_RS_THIRDPARTY:-$project/../shared/thirdparty}
dest=$1
shift
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

die() { echo "duniverse: $*" >&2; exit 1; }
tmp=
trap 'if [ -n "$tmp" ]; then rm -rf "$tmp"; fi' EXIT

# The README row of NAME: "| NAME.tar.gz | owner/repo | commit | ...".
pin() {
    [ -f "$thirdparty/README.md" ] || return 1
    awk -F'|' -v t="$1.tar.gz" '{ gsub(/ /, "", $2) } $2 == t { gsub(/ /, "", $3); gsub(/ /, "", $4); print $3, $4; exit }' \
        "$thirdparty/README.md" | grep .
}

for name in "$@"; do
    case $name in
        */* | .* | "") die "bad name '$name' (a tarball's name without .tar.gz)" ;;
    esac
    tarball=$thirdparty/$name.tar.gz
    if [ -f "$tarball" ]; then
        key=sha256:$(sha256sum "$tarball" | cut -d' ' -f1)
    else
        read -r repo commit < <(pin "$name") ||
            die "$tarball is missing, and no README.md row in $thirdparty says where it comes from"
        key=git:$repo@$commit
    fi
    if [ "$(cat "$dest/$name/.duniverse-key" 2> /dev/null)" = "$key" ]; then
        continue
    fi
    tmp=$dest/.$name.new
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [ -f "$tarball" ]; then
        tar xzf "$tarball" -C "$tmp"
    else
        command -v git > /dev/null || die "$tarball is missing, and git is not installed to fetch $repo at $commit"
        echo "duniverse: $tarball missing; fetching github.com/$repo at $commit" >&2
        git init -q "$tmp/git"
        git -C "$tmp/git" fetch -q --depth 1 "https://github.com/$repo" "$commit" ||
            die "could not fetch github.com/$repo at $commit (no network?); put $name.tar.gz in $thirdparty"
        git -C "$tmp/git" archive --prefix="$name/" FETCH_HEAD | tar x -C "$tmp"
        rm -rf "$tmp/git"
    fi
    [ -d "$tmp/$name" ] || die "$name: the archive has no top-level directory $name/"
    echo "$key" > "$tmp/$name/.duniverse-key"
    rm -rf "${dest:?}/$name"
    mv "$tmp/$name" "$dest/$name"
    rmdir "$tmp"
    tmp=
    echo "duniverse: $name ($key)" >&2
done
echo "$dest"
