#!/usr/bin/env bash
# An OCaml 5.4.1 environment: a Debian sid chroot (OCaml 5.4.1, dune 3.2x,
# lwt 6, cmdliner 2, alcotest 1.9, cstruct 6.3, Xen 4.20's tools), made with
# mmdebstrap, cached, and made anew when its package list changes.
# The host's rustup and cargo are bind-mounted (no Rust in the chroot).
#   usage: ocaml5-env.sh ensure          make (or reuse) the chroot; print its path
#          ocaml5-env.sh run DIR CMD...  run CMD in the chroot, in DIR, with DIR
#                                        bind-mounted at the same path (read-write)
#          ocaml5-env.sh path            print the chroot's path (made or not)
# In the chroot, PATH has /opt/vchan-rs-solo5/bin (scripts/solo5-toolchain.sh).
# Cache: $VCHAN_RS_CACHE (default ~/.cache/vchan-rs)/ocaml5/sid-<hash of the
# package list>/. Needs root (or
# sudo) for the chroot and its mounts, mmdebstrap, and Debian's archive.
# sid's Release file may be past its Valid-Until date: Check-Valid-Until is off.
set -euo pipefail

cache=${VCHAN_RS_CACHE:-$HOME/.cache/vchan-rs}

# What the chroot holds: the OCaml 5.4.1 toolchain and the project's OCaml
# libraries (build, test, doc), Xen 4.20's C libraries and tools (interop),
# what Solo5 and ocaml-solo5 need (make test-unikernel), what the mirage
# tool (mirage and functoria, built from the pinned source by make
# test-mirage-xen) links, and the tools the tests call.
packages=(
    ocaml ocaml-source ocaml-dune ocaml-findlib
    liblwt-ocaml-dev libcstruct-ocaml-dev libcmdliner-ocaml-dev
    libalcotest-ocaml-dev ocaml-odoc opam opam-installer
    libastring-ocaml-dev libbos-ocaml-dev libfmt-ocaml-dev libfpath-ocaml-dev
    libipaddr-ocaml-dev liblogs-ocaml-dev librresult-ocaml-dev liburi-ocaml-dev
    libxen-dev xen-utils
    gcc make binutils libc6-dev libseccomp-dev pkg-config
    git ca-certificates strace procps file xz-utils patch
)

# One chroot per package list (bump the layout number when the way the chroot
# is made changes): branches with different lists do not thrash one cache.
layout=1
stamp=$({ echo "$layout"; printf '%s\n' "${packages[@]}"; } | sha256sum | cut -c1-12)
root=$cache/ocaml5/sid-$stamp

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure() {
    if [ -f "$root/.vchan-rs-stamp" ]; then
        echo "$root"
        return
    fi
    # mmdebstrap (and rsync, for scripts/test-ocaml5.sh's copy of the tree).
    bash "$(dirname "$0")/setup.sh" --install chroot >&2
    echo "ocaml5-env: making the Debian sid chroot in $root (about 2 minutes)" >&2
    local tmp=$root.new
    sudo_ rm -rf "$tmp"
    mkdir -p "$(dirname "$root")"
    local list
    list=$(IFS=,; echo "${packages[*]}")
    sudo_ mmdebstrap --variant=apt --quiet \
        --aptopt='Acquire::Check-Valid-Until "false"' \
        --include="$list" \
        sid "$tmp" http://deb.debian.org/debian >&2
    echo "$stamp" | sudo_ tee "$tmp/.vchan-rs-stamp" > /dev/null
    sudo_ mv "$tmp" "$root"
    # Chroots of other package lists unused for a week go.
    find "$cache/ocaml5" -maxdepth 1 -name 'sid-*' ! -name "sid-$stamp*" -mtime +7 \
        -exec rm -rf {} + 2> /dev/null || true
    echo "ocaml5-env: OCaml $(sudo_ chroot "$root" ocamlc -version) in $root" >&2
    echo "$root"
}

run() {
    local dir
    dir=$(cd "$1" && pwd)
    shift
    [ -f "$root/.vchan-rs-stamp" ] || { echo "ocaml5-env: no chroot; run: $0 ensure" >&2; exit 1; }
    local rustup=${RUSTUP_HOME:-$HOME/.rustup} cargo=${CARGO_HOME:-$HOME/.cargo}
    # A private mount namespace: every mount goes away with the command.
    # shellcheck disable=SC2016
    sudo_ unshare --mount --propagation private env \
        ROOT="$root" DIR="$dir" RUSTUP="$rustup" CARGO="$cargo" HOMEDIR="$HOME" \
        bash -c '
        set -e
        mnt() { mkdir -p "$ROOT$2"; mount --bind "$1" "$ROOT$2"; }
        mount -t proc proc "$ROOT/proc"
        mount --rbind /dev "$ROOT/dev"
        mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp"
        mkdir -p "$ROOT/dev/shm" && mount -t tmpfs -o mode=1777 tmpfs "$ROOT/dev/shm"
        mnt "$RUSTUP" "$RUSTUP"
        mnt "$CARGO" "$CARGO"
        mnt "$DIR" "$DIR"
        for d in /work/shared "$(dirname "$DIR")/shared"; do
            if [ -d "$d" ]; then mnt "$d" "$d"; fi
        done
        exec chroot "$ROOT" env -i HOME="$HOMEDIR" TERM=dumb LANG=C.UTF-8 \
            PATH="$CARGO/bin:/opt/vchan-rs-solo5/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
            RUSTUP_HOME="$RUSTUP" CARGO_HOME="$CARGO" CI="${CI:-}" \
            bash -c "cd \"\$0\" && exec \"\$@\"" "$DIR" "$@"
        ' -- "$@"
}

case ${1:-} in
    ensure) ensure ;;
    path) echo "$root" ;;
    run) shift; [ $# -ge 2 ] || { echo "usage: $0 run DIR CMD..." >&2; exit 2; }; run "$@" ;;
    *) echo "usage: $0 ensure | path | run DIR CMD..." >&2; exit 2 ;;
esac
