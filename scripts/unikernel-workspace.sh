#!/usr/bin/env bash
# The generic part of a scratch dune workspace for unikernels, as
# opam-monorepo would lay it out (make test-unikernel, make test-mirage-xen):
#   usage: unikernel-workspace.sh WS
# Makes WS (if missing) and writes in it:
#   vchan-rs/      a fresh copy of the project's source: in a git checkout its
#                  tracked and untracked (not ignored) files, else everything
#                  but _build, target and dist; its target/ is a link to
#                  WS/cargo-target, which survives the copy (cargo stays
#                  incremental, and nothing built here lands in the
#                  project's own target/)
#   dune-project, dune-workspace
#                  contexts `default` (the build machine) and `solo5`
#                  (findlib toolchain solo5, ocaml-solo5's cross-compiler)
# The caller adds the rest: the duniverse (scripts/duniverse.sh), its own
# sources, and WS/dune, which must keep dune out of cargo-target (e.g.
# `(data_only_dirs cargo-target)`) and mark the duniverse vendored.
set -euo pipefail

[ $# -eq 1 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
project=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
ws=$(cd "$1" && pwd)

rm -rf "$ws/vchan-rs"
mkdir -p "$ws/vchan-rs" "$ws/cargo-target"
if git -C "$project" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    (cd "$project" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
        tar -C "$project" --null -T - -cf - | tar -C "$ws/vchan-rs" -xf -
else # a release tarball's tree
    tar -C "$project" --exclude=./_build --exclude=./target --exclude=./dist -cf - . |
        tar -C "$ws/vchan-rs" -xf -
fi
ln -s ../cargo-target "$ws/vchan-rs/target"

cat > "$ws/dune-project" << 'EOF'
(lang dune 3.0)
EOF
cat > "$ws/dune-workspace" << 'EOF'
(lang dune 3.0)
(context (default))
(context (default (name solo5) (toolchain solo5) (host default)
  (disable_dynamically_linked_foreign_archives true)))
EOF
