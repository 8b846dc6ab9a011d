#!/usr/bin/env bash
# What `opam pin add vchan-rs <git checkout>` does, without an opam
# repository: a clean clone of this repository's HEAD (read-only, as opam's
# mirror of a pin), the opam file's extra-sources fetched and checked
# against their checksums (opam's download step; here from cargo's cache,
# filled by `cargo fetch` when a crate is missing), then the opam file's
# build and install commands in a copy of the source, with no network
# (a new network namespace), an empty CARGO_HOME and an empty HOME.
# Finally a program is compiled and run against the installed library.
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
opam=$tmp/pin/vchan-rs.opam
grep -q '"bash" "scripts/opam-vendor.sh"' "$opam" || fail "the opam file does not vendor its extra-sources"

# opam's download step: every extra-source, checked against its checksum.
mkdir "$tmp/build"
(cd "$tmp/pin" && tar --exclude=.git -cf - .) | tar -xf - -C "$tmp/build"
chmod -R u+w "$tmp/build"
cache() { ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$1" 2> /dev/null | head -n 1; }
fetched=false
n=0
while read -r file sum; do
    name=${file#crate-}
    name=${name%.crate}.crate
    if [ -z "$(cache "$name")" ] && ! $fetched; then
        say "fetching crates missing from cargo's cache (cargo fetch)"
        (cd "$project" && cargo fetch --locked --quiet)
        fetched=true
    fi
    src=$(cache "$name")
    [ -n "$src" ] || fail "$name: not in cargo's cache"
    grep -q "checksum: \"sha256=$sum\"" "$opam" || fail "$file: no checksum sha256=$sum in the opam file"
    [ "$(sha256sum < "$src" | cut -d' ' -f1)" = "$sum" ] || fail "$name: checksum mismatch"
    cp "$src" "$tmp/build/$file"
    n=$((n + 1))
done < <(cd "$tmp/pin" && bash scripts/opam-crates.sh --list)
[ "$(grep -c '^extra-source ' "$opam")" -eq "$n" ] || fail "the opam file lists other extra-sources than Cargo.lock"
say "$n extra-sources fetched and checked"

# opam's build and install steps, offline, with empty CARGO_HOME and HOME.
mkdir "$tmp/cargo-home" "$tmp/home" "$tmp/prefix"
jobs=$(nproc)
# A user namespace when not root (one cannot be made inside a chroot, where
# make test-ocaml5 runs as root).
userns=(--map-root-user)
[ "$(id -u)" -ne 0 ] || userns=()
# shellcheck disable=SC2016
unshare "${userns[@]}" --net env -i PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin" \
    HOME="$tmp/home" CARGO_HOME="$tmp/cargo-home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
    CARGO_NET_OFFLINE=true OPAM_PACKAGE_NAME=vchan-rs OPAM_SWITCH_PREFIX="$tmp/prefix" JOBS="$jobs" \
    bash -c '
    set -e
    cd "$0"
    if curl -s -m 5 -o /dev/null https://crates.io 2> /dev/null; then echo "network reachable" >&2; exit 1; fi
    bash scripts/opam-vendor.sh
    dune build -p vchan-rs -j "$JOBS" --promote-install-files=false @install
    dune install -p vchan-rs --create-install-files vchan-rs
    ' "$tmp/build" > "$tmp/build.log" 2>&1 || { tail -40 "$tmp/build.log"; fail "opam's build steps"; }
grep -q "crates unpacked into vendor" "$tmp/build.log" || fail "opam-vendor did not vendor the crates"
[ ! -e "$tmp/cargo-home/registry/cache" ] || fail "cargo downloaded crates into CARGO_HOME"
(cd "$tmp/build" && opam-installer --prefix="$tmp/prefix" vchan-rs.install) > "$tmp/install.log" 2>&1 &&
    ! grep -q ERROR "$tmp/install.log" || { cat "$tmp/install.log"; false; } ||
    fail "opam-installer vchan-rs.install"
say "built offline and installed into a prefix"

# A program against the installed library.
mkdir "$tmp/prog"
cat > "$tmp/prog/t.ml" <<'ML'
let () =
  match Vchan_rs.Port.of_string "pin-check" with
  | Ok p -> print_endline ("port " ^ Vchan_rs.Port.to_string p)
  | Error (`Msg m) -> prerr_endline m; exit 1
ML
(cd "$tmp/prog" && OCAMLPATH="$tmp/prefix/lib" ocamlfind ocamlopt -package vchan-rs -linkpkg t.ml -o t) \
    > "$tmp/prog/log" 2>&1 || { cat "$tmp/prog/log"; fail "a program against the installed vchan-rs"; }
[ "$("$tmp/prog/t")" = "port pin-check" ] || fail "the program's output"
[ -x "$tmp/prefix/bin/vchan-cat" ] || fail "vchan-cat not installed"
say "a program links against the installed vchan-rs and runs"
echo "test result: ok. 1 passed; 0 failed"
