#!/usr/bin/env bash
# Build ocaml-vchan's xencat and the bench's OCaml roles over ocaml-vchan
# (bench/ocaml/vbench.ml with bench/ocaml-vchan/impl.ml) in a scratch dune
# workspace, from the pinned sources (scripts/duniverse.sh: ocaml-vchan and
# its Unix library's dependencies that Debian does not package), with the
# host's OCaml, lwt, cstruct, fmt and cmdliner.
#   usage: ocaml-vchan.sh [DEST]    (default <project>/target/ocaml-vchan)
# On success prints two lines, the paths of xencat.exe and vbench.exe. When
# it cannot build (sources absent and not fetchable, a build error), prints
# "not built: WHY" on standard error and exits 1.
# ocaml-evtchn and ocaml-gnt call libxenctrl's compatibility names
# (xc_evtchn_*, xc_gnttab_*): linked against Debian's libxenctrl, they run
# on xensim's under vchan-xensim.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$project/target/ocaml-vchan}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

fail() {
    echo "not built: $*" >&2
    exit 1
}

# One build at a time in DEST (cargo runs tests in parallel).
exec 9> "$dest/.lock"
flock 9

sources=(ocaml-vchan ocaml-evtchn ocaml-gnt ocaml-xenstore-clients ocaml-xenstore io-page mirage-flow lwt-dllist)
bash "$project/scripts/duniverse.sh" "$dest/duniverse" "${sources[@]}" > /dev/null 2> "$dest/duniverse.log" ||
    fail "ocaml-vchan's pinned sources: $(tail -1 "$dest/duniverse.log")"

printf '(lang dune 2.9)\n' > "$dest/dune-project"
printf '(lang dune 2.9)\n' > "$dest/dune-workspace"
printf '(vendored_dirs duniverse)\n' > "$dest/dune"
mkdir -p "$dest/bench"
cp "$project/bench/ocaml/vbench.ml" \
    "$project/bench/ocaml-vchan/impl.ml" "$dest/bench/"
cat > "$dest/bench/dune" << 'EOF'
(executable
 (name vbench)
 (libraries vchan vchan-unix lwt lwt.unix cstruct unix))
EOF

targets=(duniverse/ocaml-vchan/cli/xencat.exe bench/vbench.exe)
# ocaml-evtchn's C stubs warn (an old handle type); the output is kept for failures.
(cd "$dest" && nice dune build --root . "${targets[@]}") > "$dest/build.log" 2>&1 ||
    fail "dune build in $dest failed (see $dest/build.log): $(grep -m1 -i 'error' "$dest/build.log" || tail -1 "$dest/build.log")"
for t in "${targets[@]}"; do
    echo "$dest/_build/default/$t"
done
