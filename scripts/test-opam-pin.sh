#!/usr/bin/env bash
# What `opam pin add vchan-rs <git checkout>` and then `opam pin add
# vchan-rs-unix <git checkout>` do, without an opam repository: a clean clone
# of this repository's HEAD (read-only, as opam's mirror of a pin); for each
# package in turn, vchan-rs first, the opam file's extra-sources fetched and
# checked against their checksums (opam's download step; here from cargo's
# cache, filled by `cargo fetch` when a crate is missing), then the opam
# file's build and install commands in a copy of the source, with no network
# (a new network namespace), an empty CARGO_HOME and an empty HOME, into one
# prefix (the switch): vchan-rs-unix builds against the installed vchan-rs.
# vchan-rs's build (with its tests, as opam's with-test) must make cargo
# build the freestanding crates only. Then a program of vchan-rs alone
# (test/consumer) is compiled against the installed library and checked to
# link nothing of vchan-rs-unix's (test/consumer/check.sh, with the installed
# stubs and xensim libraries), and a program of vchan-rs-unix runs.
#   usage: test-opam-pin.sh   (needs unprivileged user namespaces, or root)
# Prints a "test result:" line; exits non-zero on failure.
set -euo pipefail
project=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vchan-opam-pin.XXXXXX")
trap 'chmod -R u+w "$tmp" 2> /dev/null; rm -rf "$tmp"' EXIT
say() { echo "opam-pin: $*"; }
fail() { say "FAILED: $*"; echo "test result: FAILED. 0 passed; 1 failed"; exit 1; }

# The pinned source: a clean checkout, read-only.
git clone -q --no-hardlinks "$project" "$tmp/pin"
chmod -R a-w "$tmp/pin"
mkdir "$tmp/cargo-home" "$tmp/home" "$tmp/prefix"
prefix=$tmp/prefix
cache() { ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$1" 2> /dev/null | head -n 1; }
fetched=false
jobs=$(nproc)
# A user namespace when not root (one cannot be made inside a chroot, where
# make test-ocaml5 runs as root).
userns=(--map-root-user)
[ "$(id -u)" -ne 0 ] || userns=()

# pin PKG [TARGET...]: opam's download, build (dune build -p PKG @install,
# and the TARGETs) and install steps for PKG.opam, into $prefix.
pin() {
    local pkg=$1 opam=$tmp/pin/$1.opam build=$tmp/build-$1 n=0 file sum name src
    shift
    grep -q '"bash" "scripts/opam-vendor.sh" name' "$opam" || fail "$pkg.opam does not run opam-vendor.sh"
    mkdir "$build"
    (cd "$tmp/pin" && tar --exclude=.git -cf - .) | tar -xf - -C "$build"
    chmod -R u+w "$build"
    # opam's download step: every extra-source, checked against its checksum.
    while read -r file sum; do
        name=${file#crate-}
        if [ -z "$(cache "$name")" ] && ! $fetched; then
            say "fetching crates missing from cargo's cache (cargo fetch)"
            (cd "$project" && cargo fetch --locked --quiet)
            fetched=true
        fi
        src=$(cache "$name")
        [ -n "$src" ] || fail "$name: not in cargo's cache"
        [ "$(sha256sum < "$src" | cut -d' ' -f1)" = "$sum" ] || fail "$name: checksum mismatch"
        cp "$src" "$build/$file"
        n=$((n + 1))
    done < <(awk '/^extra-source "/ { f = $2; gsub(/"/, "", f) }
                  /^  checksum: "sha256=/ { s = $2; gsub(/"|sha256=/, "", s); print f, s }' "$opam")
    say "$pkg: $n extra-sources fetched and checked"
    # shellcheck disable=SC2016
    unshare "${userns[@]}" --net env -i PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" \
        HOME="$tmp/home" CARGO_HOME="$tmp/cargo-home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
        CARGO_NET_OFFLINE=true OPAM_PACKAGE_NAME="$pkg" OPAM_SWITCH_PREFIX="$prefix" \
        OCAMLPATH="$prefix/lib" CAML_LD_LIBRARY_PATH="$prefix/lib/stublibs" JOBS="$jobs" \
        bash -c '
        set -e
        cd "$0"
        pkg=$1; shift
        if curl -s -m 5 -o /dev/null https://crates.io 2> /dev/null; then echo "network reachable" >&2; exit 1; fi
        bash scripts/opam-vendor.sh "$pkg"
        dune build -p "$pkg" -j "$JOBS" --promote-install-files=false @install "$@"
        dune install -p "$pkg" --create-install-files "$pkg"
        ' "$build" "$pkg" "$@" > "$tmp/build-$pkg.log" 2>&1 || { tail -40 "$tmp/build-$pkg.log"; fail "$pkg: opam's build steps"; }
    [ "$n" -eq 0 ] || grep -q "$n crates unpacked into vendor" "$tmp/build-$pkg.log" ||
        fail "$pkg: opam-vendor did not vendor the crates"
    [ ! -e "$tmp/cargo-home/registry/cache" ] || fail "$pkg: cargo downloaded crates into CARGO_HOME"
    (cd "$build" && opam-installer --prefix="$prefix" "$pkg.install") > "$tmp/install.log" 2>&1 &&
        ! grep -q ERROR "$tmp/install.log" || { cat "$tmp/install.log"; false; } ||
        fail "opam-installer $pkg.install"
    say "$pkg: built offline and installed into the prefix"
}

# The Cargo packages that cargo built in a build directory (target/*/.fingerprint/NAME-HASH).
cargo_built() {
    find "$1"/target/*/.fingerprint -mindepth 1 -maxdepth 1 -type d -printf '%f\n' |
        sed 's/-[0-9a-f]*$//' | sort -u | tr '\n' ' '
}

# 1. vchan-rs alone, with its tests (opam's with-test).
pin vchan-rs @runtest
grep -q "narrowed to vchan-core vchan-freestanding" "$tmp/build-vchan-rs.log" ||
    fail "vchan-rs: opam-vendor did not narrow the Cargo workspace"
grep -q "test result: ok" "$tmp/build-vchan-rs.log" || fail "vchan-rs: its tests did not run"
built=$(cargo_built "$tmp/build-vchan-rs")
[ "$built" = "vchan-core vchan-freestanding " ] || fail "vchan-rs: cargo built $built"
say "vchan-rs: cargo built $built(and nothing else); its tests pass"
for f in "$prefix"/lib/vchan-rs/META "$prefix"/lib/vchan-rs/libvchan_freestanding.a; do
    [ -e "$f" ] || fail "vchan-rs: $f not installed"
done
[ ! -e "$prefix/bin" ] && [ ! -e "$prefix/lib/vchan-rs-unix" ] || fail "vchan-rs installed $(ls "$prefix/bin" "$prefix/lib")"

# 2. vchan-rs-unix, against the installed vchan-rs.
pin vchan-rs-unix
built=$(cargo_built "$tmp/build-vchan-rs-unix")
[ -n "$built" ] && ! grep -qw vchan-freestanding <<< "$built" &&
    [ ! -e "$tmp/build-vchan-rs-unix/_build/install/default/lib/vchan-rs/META" ] ||
    fail "vchan-rs-unix built its own vchan-rs (cargo built $built)"
for f in bin/vchan-cat bin/vchan-xensim lib/vchan-rs-unix/META lib/vchan-rs-unix/libvchan_rs_stubs.a \
    lib/vchan-rs-unix/xensim/libxengnttab.so.1 man/man1/vchan-cat.1; do
    [ -e "$prefix/$f" ] || fail "vchan-rs-unix: $f not installed"
done

# 3. A program of vchan-rs alone: nothing of vchan-rs-unix's in it.
mkdir "$tmp/prog"
cp "$project/test/consumer/consumer.ml" "$tmp/prog/"
(cd "$tmp/prog" && OCAMLPATH="$prefix/lib" ocamlfind ocamlopt -package vchan-rs,lwt,cstruct -linkpkg \
    consumer.ml -o consumer) > "$tmp/prog/log" 2>&1 || { cat "$tmp/prog/log"; fail "a program against the installed vchan-rs"; }
OCAMLPATH="$prefix/lib" bash "$project/test/consumer/check.sh" --meta "$prefix/lib/vchan-rs/META" \
    "$tmp/prog/consumer" "$(ocamlfind ocamlc -where)/libasmrun.a" \
    "$prefix/lib/vchan-rs-unix/libvchan_rs_stubs.a" "$prefix"/lib/vchan-rs-unix/xensim/*.so* \
    > "$tmp/prog/check.log" 2>&1 || { cat "$tmp/prog/check.log"; fail "a program of vchan-rs alone (test/consumer/check.sh)"; }
say "a program of vchan-rs alone links no cmdliner, std stubs or xensim, and runs"

# 4. A program of vchan-rs-unix, and the installed tools.
cp "$project/test/bytecode/smoke.ml" "$tmp/prog/"
(cd "$tmp/prog" && OCAMLPATH="$prefix/lib" ocamlfind ocamlopt -thread -package vchan-rs-unix,lwt.unix -linkpkg \
    smoke.ml -o smoke) > "$tmp/prog/log" 2>&1 || { cat "$tmp/prog/log"; fail "a program against the installed vchan-rs-unix"; }
[ "$("$tmp/prog/smoke")" = "bytecode: ok" ] || fail "the vchan-rs-unix program's output"
"$prefix/bin/vchan-cat" --version | grep -qx "$(sed -n 's/^(version \(.*\))$/\1/p' "$project/dune-project")" ||
    fail "vchan-cat --version"
out=$("$prefix/bin/vchan-xensim" -- sh -c 'echo "$LD_LIBRARY_PATH"') || fail "vchan-xensim"
[ "$(cd "${out%%:*}" && pwd -P)" = "$(cd "$prefix/lib/vchan-rs-unix/xensim" && pwd -P)" ] ||
    fail "vchan-xensim found its libraries in ${out%%:*}"
say "a program of vchan-rs-unix runs; vchan-cat and vchan-xensim run installed"
echo "test result: ok. 2 passed; 0 failed"
