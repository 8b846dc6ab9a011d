#!/usr/bin/env bash
# make test-ocaml5: the test suite on OCaml 5.4.1 and today's libraries
# (dune 3, lwt 6, cmdliner 2, alcotest 1.9, cstruct 6.3) and Xen 4.20's C
# libraries and tools, in the Debian sid chroot of scripts/ocaml5-env.sh
# (made when missing). The chroot has another glibc, so its builds must not
# share target/ and _build/ with the host's: the work tree is copied
# (rsync, without target/, _build/, dist/ and what .gitignore names) into
#   $VCHAN_RS_CACHE (default ~/.cache/vchan-rs)/ocaml5-tree/<hash of this
#   tree's path>/
# and built there, so a warm run is incremental. The copy is a git
# repository of its own whose one commit holds every file of the work tree
# (tracked or not), for make release's `git ls-files` and test-opam's clone.
# What runs there (the host's rustup and cargo, bind-mounted): the Rust
# tests, the OCaml build and dune test, bench-smoke, opam lint, the docs,
# the release tarball's build and install. Not again: fmt-check and clippy
# (the same Rust toolchain as the host's make test).
#   usage: scripts/test-ocaml5.sh [MAKE TARGET...]   (default: all of the above)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${VCHAN_RS_CACHE:-$HOME/.cache/vchan-rs}

# mmdebstrap makes the chroot, rsync copies the tree.
bash "$here/scripts/setup.sh" --install chroot > /dev/null
bash "$here/scripts/ocaml5-env.sh" ensure > /dev/null

tree=$cache/ocaml5-tree/$(printf '%s' "$here" | sha256sum | cut -c1-12)
mkdir -p "$tree"
rsync -a --delete \
    --exclude=/.git --exclude=/target/ --exclude=/_build/ --exclude=/dist/ \
    --filter=':- .gitignore' \
    "$here/" "$tree/"
if [ ! -d "$tree/.git" ]; then
    git -C "$tree" init -q
fi
# One commit, remade each run: the work tree as it is.
git -C "$tree" add -A
git -C "$tree" -c user.name=test-ocaml5 -c user.email=test-ocaml5@localhost \
    commit -q --allow-empty $(git -C "$tree" rev-parse -q --verify HEAD > /dev/null && echo --amend) \
    -m "test-ocaml5: $here as it is"
echo "test-ocaml5: the work tree copied to $tree"

targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(test-rust test-ocaml bench-smoke test-opam doc test-release)
fi
start=$(date +%s)
# -j1: the machine is shared; cargo and dune parallelise inside.
bash "$here/scripts/ocaml5-env.sh" run "$tree" \
    sh -c 'echo "test-ocaml5: OCaml $(ocamlc -version), dune $(dune --version);" $(dpkg-query -W \
               -f="\${Package} \${Version};\n" liblwt-ocaml-dev libcmdliner-ocaml-dev \
               libalcotest-ocaml-dev libcstruct-ocaml-dev ocaml-odoc xen-utils-common) &&
           exec make -j1 "$@"' sh "${targets[@]}"
echo "test-ocaml5: ok (${targets[*]}) in $(($(date +%s) - start)) s on OCaml 5.4.1"
