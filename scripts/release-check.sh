#!/usr/bin/env bash
# Check a release tarball (make release) the way its users build it, with an
# empty CARGO_HOME and no network (`unshare -n` when permitted, else
# CARGO_NET_OFFLINE=true alone):
#   1. opam's way, one package after the other, each in its own build
#      directory: vchan-rs alone (opam's build steps, in a copy of the
#      unpacked directory: scripts/opam-vendor.sh, which narrows the Cargo
#      workspace to the freestanding crates, `dune build -p vchan-rs`,
#      `dune install --prefix`), then vchan-rs-unix against the installed
#      vchan-rs (in the unpacked directory); a smoke
#      test of the installed programs
#      (vchan-cat --version, 1 MiB between two vchan-cats, vchan-xensim
#      giving Debian's libxenvchan its libraries), the README's dune
#      project (its dune-project, dune, programs and build commands) built
#      against the installed libraries, native and bytecode, its programs
#      talking, the man pages, and `dune uninstall` leaving nothing behind;
#   2. opam-monorepo's way: the same tree as duniverse/vchan-rs of another
#      dune workspace, whose own executables (the README's OCaml server and
#      client) link vchan-rs and talk to each other.
#   usage: release-check.sh TARBALL
# Prints one line per check and a closing `test result:` line.
set -euo pipefail
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-release-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/cargo-home" "$tmp/src"
tar -xzf "$tarball" -C "$tmp/src"
src=$(echo "$tmp"/src/vchan-rs-*)

# No network: a network namespace of our own if we may, and cargo told so.
if unshare -n true 2>/dev/null; then
    offline=(unshare -n --)
    how="unshare -n and CARGO_NET_OFFLINE=true"
else
    offline=()
    how="CARGO_NET_OFFLINE=true (unshare -n not permitted here)"
fi
run_offline() {
    env CARGO_HOME="$tmp/cargo-home" CARGO_NET_OFFLINE=true "${offline[@]}" "$@"
}
echo "release-check: $(basename "$tarball"), empty CARGO_HOME, offline by $how"

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "release-check: ok: $*"; }
fail() { failed=$((failed + 1)); echo "release-check: FAILED: $*"; }

# 1. opam's way: vchan-rs, then vchan-rs-unix over the installed vchan-rs.
prefix=$tmp/prefix
opam_build() {
    local pkg=$1 dir=$2
    [ -d "$dir" ] || cp -a "$src" "$dir"
    (cd "$dir" && run_offline env OCAMLPATH="$prefix/lib" bash -c '
        bash scripts/opam-vendor.sh "$0" && dune build -p "$0" @install' "$pkg" 2>&1 | tail -30) &&
        (cd "$dir" && dune install --prefix "$prefix" "$pkg" > /dev/null 2>&1)
}
# The Cargo packages cargo built in a directory (target/*/.fingerprint/NAME-HASH).
cargo_built() {
    find "$1"/target/*/.fingerprint -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
        sed 's/-[0-9a-f]*$//' | sort -u | tr '\n' ' '
}
start=$(date +%s)
if opam_build vchan-rs "$tmp/build-vchan-rs" && [ -e "$prefix/lib/vchan-rs/META" ] && [ ! -e "$prefix/bin" ] &&
    [ "$(cargo_built "$tmp/build-vchan-rs")" = "vchan-core vchan-freestanding " ]; then
    pass "vchan-rs alone: opam-vendor.sh, dune build -p vchan-rs and dune install; cargo built the freestanding crates only ($(($(date +%s) - start)) s)"
else
    fail "vchan-rs alone: dune build -p vchan-rs / dune install (cargo built: $(cargo_built "$tmp/build-vchan-rs"))"
fi
start=$(date +%s)
if opam_build vchan-rs-unix "$src" && [ -x "$src/_build/default/bin/vchan_cat.exe" ] &&
    ! grep -qw vchan-freestanding <<< "$(cargo_built "$src")"; then
    pass "vchan-rs-unix over the installed vchan-rs: dune build -p vchan-rs-unix and dune install ($(($(date +%s) - start)) s)"
else
    fail "vchan-rs-unix over the installed vchan-rs: dune build -p vchan-rs-unix / dune install"
fi
# opam's with-test builds the tests the same way; run the quick ones
# (the README's examples, the signature checks), still offline.
if (cd "$src" && run_offline env OCAMLPATH="$prefix/lib" \
    dune build -p vchan-rs-unix @test/readme/runtest @test/signature/runtest 2>&1 |
    tail -30 | grep -q "test result: ok"); then
    pass "dune build -p vchan-rs-unix @test/readme/runtest @test/signature/runtest"
else
    fail "dune build -p vchan-rs-unix @test/readme/runtest @test/signature/runtest"
fi
bin=$tmp/prefix/bin
if [ -x "$bin/vchan-cat" ] && "$bin/vchan-cat" --version | grep -q .; then
    pass "installed vchan-cat --version: $("$bin/vchan-cat" --version)"
else
    fail "installed vchan-cat --version"
fi
rv=$tmp/rv
head -c 1048576 /dev/urandom > "$tmp/in"
VCHAN_UNIX_DIR=$rv VCHAN_DOMID=0 timeout 60 "$bin/vchan-cat" -l -d 1 smoke > "$tmp/out" &
listener=$!
if VCHAN_UNIX_DIR=$rv VCHAN_DOMID=1 timeout 60 "$bin/vchan-cat" -N --timeout 30 0 smoke < "$tmp/in" &&
    wait "$listener" && cmp -s "$tmp/in" "$tmp/out"; then
    pass "1 MiB between two installed vchan-cats, identical"
else
    kill "$listener" 2>/dev/null || true
    fail "1 MiB between two installed vchan-cats"
fi
# Under the launcher, Debian's libxenvchan (libxen-dev) loads the installed
# xensim libraries in place of Xen's.
libxenvchan=$(readlink -f "$(cc -print-file-name=libxenvchan.so)")
if out=$("$bin/vchan-xensim" -- ldd "$libxenvchan" 2>&1) &&
    grep -q "libxengnttab.so.1 => $tmp/prefix/.*lib/vchan-rs-unix/xensim/libxengnttab.so.1" <<< "$out"; then
    pass "installed vchan-xensim: $libxenvchan loads lib/vchan-rs-unix/xensim"
else
    fail "installed vchan-xensim: $out"
fi

# 1b. A user's project, as the README has it (its dune-project, dune,
#     programs and build commands), against what dune install installed:
#     native and bytecode (whose link needs CAML_LD_LIBRARY_PATH too).
block() { sh "$here/scripts/readme-block.sh" "$here/README.md" "$1"; }
app=$tmp/user
mkdir -p "$app"
# readme_pair NAME SERVER CLIENT WHAT: the README's server (domain 0) and
# client (domain 1) exchange their greeting in a rendezvous directory of
# their own. The installed library's stubs are found through
# CAML_LD_LIBRARY_PATH (a bytecode server needs it; native ignores it).
readme_pair() {
    local rv=$tmp/rv-$1 out=$tmp/$1 server
    VCHAN_UNIX_DIR=$rv VCHAN_DOMID=0 CAML_LD_LIBRARY_PATH=$tmp/prefix/lib/stublibs \
        timeout 60 "$2" > "$out-server.out" &
    server=$!
    if VCHAN_UNIX_DIR=$rv VCHAN_DOMID=1 timeout 60 "$3" > "$out-client.out" &&
        wait "$server" && grep -qx "client got: hello" "$out-client.out" &&
        grep -qx "server got: HELLO" "$out-server.out"; then
        pass "$4"
    else
        kill "$server" 2>/dev/null || true
        fail "$4: $(cat "$out-server.out" "$out-client.out")"
    fi
}

for f in dune-project dune server.ml client.ml build.sh; do
    block "$f" > "$app/$f"
done
if (cd "$app" && PREFIX=$tmp/prefix sh build.sh 2>&1 | tail -30) &&
    [ -x "$app/_build/default/server.bc" ] && [ -x "$app/_build/default/client.exe" ]; then
    pass "the README's dune project builds against the installed library: $(tr '\n' ' ' < "$app/build.sh")"
    readme_pair user "$app/_build/default/server.bc" "$app/_build/default/client.exe" \
        "the README's programs, installed library: server.bc and client.exe talk"
else
    fail "the README's dune project against the installed library"
fi

if [ -s "$tmp/prefix/man/man1/vchan-cat.1" ] && [ -s "$tmp/prefix/man/man1/vchan-xensim.1" ] &&
    (cd "$src" && dune uninstall --prefix "$tmp/prefix" vchan-rs-unix > /dev/null 2>&1) &&
    (cd "$tmp/build-vchan-rs" && dune uninstall --prefix "$tmp/prefix" vchan-rs > /dev/null 2>&1) &&
    [ -z "$(find "$tmp/prefix" -type f)" ]; then
    pass "man pages installed; dune uninstall leaves no file behind"
else
    fail "man pages / dune uninstall: $(find "$tmp/prefix" -type f | head -5)"
fi

# 2. opam-monorepo's way: the project under duniverse/ (moved with its
#    cargo target: only the path crates rebuild).
ws=$tmp/ws
mkdir -p "$ws/duniverse" "$ws/app"
rm -rf "$src/_build" "$tmp/build-vchan-rs"
mv "$src" "$ws/duniverse/vchan-rs"
block dune-project > "$ws/dune-project"
for f in dune server.ml client.ml; do
    block "$f" > "$ws/app/$f"
done
start=$(date +%s)
if (cd "$ws" && run_offline dune build ./app/server.exe ./app/client.exe 2>&1 | tail -30) &&
    [ -x "$ws/_build/default/app/client.exe" ]; then
    pass "duniverse/vchan-rs: a consumer workspace builds ($(($(date +%s) - start)) s)"
    readme_pair duniverse "$ws/_build/default/app/server.exe" "$ws/_build/default/app/client.exe" \
        "duniverse consumer: server and client talk"
else
    fail "duniverse/vchan-rs: a consumer workspace builds"
fi

if [ "$failed" -eq 0 ]; then r=ok; else r=FAILED; fi
echo "test result: $r. $passed passed; $failed failed"
[ "$failed" -eq 0 ]
