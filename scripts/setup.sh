#!/usr/bin/env bash
# The Debian 12 packages vchan-rs needs, by purpose:
#   build  compile the Rust crates, the OCaml library, vchan-cat, vchan-xensim
#   test   make test (Xen's C libxenvchan and vchan-socket-proxy as peers,
#          alcotest, opam lint) and make bench (strace counts system calls)
#   doc    make doc (odoc)
#   xen    make test-xen (Xen 4.17 under QEMU: the dom0 image by mmdebstrap,
#          the guests' busybox, Xen's C library and tools to copy in)
# usage: setup.sh --check GROUP...     say what is missing; exit 1 if anything is
#        setup.sh --install GROUP...   install what is missing (apt-get; through
#                                      sudo when not root), saying what
# Idempotent: well under a second when everything is present. Rust itself
# (stable >= the workspace's rust-version) comes from rustup, not apt.
# An entry "a|b" is met by either package (the first apt can install is
# installed); a virtual package (xen-utils: Xen's tools, xen-utils-4.17 on
# Debian 12, xen-utils-4.20 on Debian 13) is met by any package providing it.
set -euo pipefail

build=(gcc make binutils 'ocaml-nox|ocaml' ocaml-dune ocaml-findlib
       liblwt-ocaml-dev libcstruct-ocaml-dev libcmdliner-ocaml-dev)
test=(libalcotest-ocaml-dev libxen-dev xen-utils opam opam-installer strace)
doc=(ocaml-odoc)
# The OCaml 5.4.1 chroot (scripts/ocaml5-env.sh: make test-ocaml5,
# make test-unikernel) and the copy of the tree it tests.
chroot=(mmdebstrap rsync)
xen=(qemu-system-x86 mmdebstrap busybox-static cpio gzip e2fsprogs python3
     libxen-dev xen-utils xenstore-utils gcc)

mode=${1:-}
case $mode in --check | --install) shift ;; *)
    echo "usage: setup.sh --check|--install build|test|doc|xen..." >&2; exit 2 ;;
esac
pkgs=()
for g in "$@"; do
    case $g in
        build) pkgs+=("${build[@]}") ;;
        test) pkgs+=("${test[@]}") ;;
        doc) pkgs+=("${doc[@]}") ;;
        chroot) pkgs+=("${chroot[@]}") ;;
        xen) pkgs+=("${xen[@]}") ;;
        *) echo "setup: unknown group $g (build, test, doc, chroot or xen)" >&2; exit 2 ;;
    esac
done

# Every installed package, and what it provides, one name a line.
installed=$(dpkg-query -W -f='${db:Status-Status} ${Package} ${Provides}\n' 2>/dev/null |
    awk '$1 == "installed" { for (i = 2; i <= NF; i++) if ($i !~ /^[(=<>]|[)]$/) { sub(/,$/, "", $i); print $i } }')
missing=()
for p in "${pkgs[@]}"; do
    met=false
    for alt in ${p//|/ }; do
        if grep -qxF "$alt" <<< "$installed"; then met=true; fi
    done
    $met || missing+=("$p")
done

export PATH="$HOME/.cargo/bin:$PATH"
want_rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml")
rust_ok=true
if ! command -v cargo > /dev/null; then
    rust_ok=false
    rust_msg="cargo not found: install Rust stable (>= $want_rust) with rustup (https://rustup.rs)"
fi

if ((${#missing[@]})); then
    if [ "$mode" = --check ]; then
        echo "setup: missing Debian packages ($*): ${missing[*]}" >&2
        echo "setup: install them with: make setup  (or: sudo apt-get install ${missing[*]%%|*})" >&2
        $rust_ok || echo "setup: $rust_msg" >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo > /dev/null; then SUDO=(sudo); else
        echo "setup: missing packages ${missing[*]}; run as root or install sudo" >&2; exit 1
    fi
    "${SUDO[@]}" apt-get update -qq
    # Of alternatives, the first this distribution has.
    chosen=()
    for p in "${missing[@]}"; do
        pick=${p%%|*}
        for alt in ${p//|/ }; do
            if apt-cache show "$alt" > /dev/null 2>&1; then pick=$alt; break; fi
        done
        chosen+=("$pick")
    done
    echo "setup: installing with apt-get ($*): ${chosen[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${chosen[@]}"
fi
if ! $rust_ok; then
    echo "setup: $rust_msg" >&2
    exit 1
fi
# The freestanding archive (rust/vchan-freestanding) is also built for
# bare-metal x86_64, as a unikernel links it (the build group needs it).
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-none" ]; then
    if [ "$mode" = --check ]; then
        echo "setup: Rust target x86_64-unknown-none missing: rustup target add x86_64-unknown-none" >&2
        exit 1
    elif command -v rustup > /dev/null; then
        echo "setup: rustup target add x86_64-unknown-none"
        rustup target add x86_64-unknown-none
    else
        echo "setup: Rust target x86_64-unknown-none missing and no rustup to add it" >&2
        exit 1
    fi
fi
[ "$mode" = --check ] || echo "setup: ok ($*: ${#missing[@]} package(s) installed; $(cargo --version))"
