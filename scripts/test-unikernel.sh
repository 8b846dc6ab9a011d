#!/usr/bin/env bash
# make test-unikernel: the functor's test cases (test/functor/cases) inside a
# Solo5 unikernel (test/unikernel), run with solo5-spt, and their timings
# next to the same program as a Linux process.
#   usage: test-unikernel.sh
# On the host: makes (or reuses) the OCaml 5.4.1 chroot with Solo5 and
# ocaml-solo5 (scripts/solo5-toolchain.sh ensure), unpacks lwt and cstruct
# from the pinned tarballs into a scratch duniverse (scripts/duniverse.sh;
# $VCHAN_RS_THIRDPARTY, default ../shared/thirdparty) beside a copy of the
# project's source (scripts/unikernel-workspace.sh), then, in the chroot, builds the workspace's two contexts (default: the Linux
# process; solo5: the unikernel, vchan-rs's archive for x86_64-unknown-none),
# runs both, and checks that every case printed its `ok` line, the closing
# `N passed, 0 failed` line, and exit status 0.
# Scratch workspace: _build/unikernel (inside the project, which is all the
# chroot sees), with its own cargo target directory, so that nothing built in
# the chroot lands in the host's target/.
set -euo pipefail

project=$(cd "$(dirname "$0")/.." && pwd)
ws=$project/_build/unikernel
mem_mb=1024

# Every result line the program must print (Functor_cases.all, then the
# timings).
cases=(echo echo-caps both-ways-64MiB every-order read-view-at-wrap eof-close-shutdown
       cleaned-up-sees-leaks two-waiters ring-over-1MiB-refused port-names domain-ids timings)
figures=(stream-64MiB-64KiB ping-pong-64B memcpy-64KiB memcpy-64B memset-64KiB memcmp-64KiB)

# Checks one run's output ($1, printed with prefix $2) and exit status ($3).
check() {
    local out=$1 name=$2 status=$3 bad=0 id
    for id in "${cases[@]}"; do
        grep -qxF "$name: $id ok" "$out" || { echo "test-unikernel: $name printed no '$id ok' line" >&2; bad=1; }
    done
    for id in "${figures[@]}"; do
        grep -qE "^$name: time $id [0-9.]+ " "$out" || { echo "test-unikernel: $name timed no $id" >&2; bad=1; }
    done
    grep -qxF "$name: ${#cases[@]} passed, 0 failed" "$out" ||
        { echo "test-unikernel: $name did not close with '${#cases[@]} passed, 0 failed'" >&2; bad=1; }
    [ "$status" -eq 0 ] || { echo "test-unikernel: $name exited with status $status" >&2; bad=1; }
    return $bad
}

inside() {
    cd "$ws"
    export PATH="$1/bin:$PATH"
    echo "test-unikernel: dune build (contexts default and solo5) in $ws"
    dune build --root . -j 1 --display quiet \
        ./_build/solo5/vchan-rs/test/unikernel/vchan_unikernel.exe \
        ./_build/default/vchan-rs/test/unikernel/linux/vchan_unikernel_linux.exe
    local uk=_build/solo5/vchan-rs/test/unikernel/vchan_unikernel.exe
    local linux=_build/default/vchan-rs/test/unikernel/linux/vchan_unikernel_linux.exe
    echo "test-unikernel: $(solo5-elftool query-abi "$uk" | tr -s ' \n' ' ')"
    local st_uk=0 st_linux=0
    echo "test-unikernel: solo5-spt --mem=$mem_mb $uk"
    solo5-spt --mem="$mem_mb" "$uk" > unikernel.out 2>&1 || st_uk=$?
    cat unikernel.out
    echo "test-unikernel: $linux"
    "$linux" > linux.out 2>&1 || st_linux=$?
    cat linux.out
    local bad=0
    check unikernel.out vchan-unikernel "$st_uk" || bad=1
    check linux.out vchan-linux "$st_linux" || bad=1
    echo
    echo "In_memory timings, Solo5 spt unikernel vs Linux process (OCaml $(ocamlfind ocamlopt -version), same source, one core each):"
    printf '  %-20s %14s %14s %8s  %s\n' figure unikernel linux ratio "(unikernel/linux)"
    local id u l unit_
    for id in "${figures[@]}"; do
        read -r u unit_ < <(awk -v id="$id" '$2 == "time" && $3 == id { print $4, $5 }' unikernel.out) || u=
        read -r l _ < <(awk -v id="$id" '$2 == "time" && $3 == id { print $4, $5 }' linux.out) || l=
        if [ -n "$u" ] && [ -n "$l" ]; then
            printf '  %-20s %14s %14s %8s  %s\n' "$id" "$u" "$l" "$(awk -v u="$u" -v l="$l" 'BEGIN { printf "%.2f", u / l }')" "$unit_"
        fi
    done
    echo
    local n=$((2 * ${#cases[@]})) failed
    failed=$(cat unikernel.out linux.out | grep -cE '^vchan-(unikernel|linux): [^ ]+ FAILED' || true)
    if [ "$bad" -eq 0 ]; then
        echo "test result: ok. $n passed; 0 failed"
    else
        echo "test result: FAILED. $((n - failed)) passed; $failed failed (or lines missing: see above)"
        exit 1
    fi
}

if [ "${1:-}" = --inside ]; then
    inside "$2"
    exit
fi

# On the host. The host's Rust (bind-mounted into the chroot) needs the
# x86_64-unknown-none target: setup.sh's build group adds it.
bash "$project/scripts/setup.sh" --install build
prefix=$(bash "$project/scripts/solo5-toolchain.sh" ensure | tail -n 1)
bash "$project/scripts/unikernel-workspace.sh" "$ws"
bash "$project/scripts/duniverse.sh" "$ws/duniverse" lwt ocaml-cstruct > /dev/null
cat > "$ws/dune" << 'EOF'
(vendored_dirs duniverse)
(data_only_dirs cargo-target)
EOF
exec bash "$project/scripts/ocaml5-env.sh" run "$project" bash scripts/test-unikernel.sh --inside "$prefix"
