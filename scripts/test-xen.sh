#!/usr/bin/env bash
# make test-xen: vchan-rs between real Xen domains. Boots Xen 4.17 under
# QEMU's software emulation (TCG) with a Debian dom0, which runs the cases of
# test/xen/cases.sh against a PV and then a PVH domU, then boots a Mirage
# unikernel (test/mirage-xen/unikernels/echo, built by
# scripts/test-mirage-xen.sh --only) as a PVH domU in each vchan role;
# collects the result lines from the serial console and fails unless every
# expected "ok" line is there (test/xen/case-lists.sh names the cases).
# The dom0 image is cached in $VCHAN_RS_XEN_CACHE (default
# ~/.cache/vchan-rs/xen), rebuilt when its recipe changes.
# Needs root (mmdebstrap, chroot) and Debian's archive the first time (the
# unikernel's toolchain: the OCaml 5.4.1 chroot of scripts/ocaml5-env.sh).
#   usage: test-xen.sh               build, boot, run, check
#          test-xen.sh --check LOG [LISTS]   only check the console log of an
#                 earlier run against its case lists (default: that run's,
#                 target/xen/payload/xen/case-lists.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
t0=$(date +%s)
say() { echo "test-xen: $*"; }

# Every expected line must be in the results block that dom0 printed last;
# prints the "test result" line .ci/run counts. Status 0 when all are there.
check() { # CONSOLE_LOG [CASE_LISTS]
    local results missing=0 n type c side line cases
    local CASES_pv CASES_pvh UK_MD5 role peer retried
    results=$(tr -d '\r' < "$1" | sed -n '/^XENTEST-RESULTS-BEGIN$/,/^XENTEST-RESULTS-END$/p')
    . "${2:-target/xen/payload/xen/case-lists.sh}"
    for type in pv pvh; do
        eval "cases=\$CASES_$type"
        for c in $cases; do
            for side in dom0 domu; do
                line="XENTEST $type $c $side ok"
                grep -qxF "$line" <<< "$results" || { say "missing: $line"; missing=$((missing + 1)); }
            done
            if [ "$c" = timing ]; then
                grep -q "^XENTIME $type " <<< "$results" ||
                    { say "missing: XENTIME $type"; missing=$((missing + 1)); }
            fi
        done
    done
    # The unikernel, in each role: dom0's checks of the echo, and the MD5 of
    # what it received, printed on its console.
    for role in server client; do
        for peer in cat c; do
            line="XENTEST unikernel $role-$peer dom0 ok"
            grep -qxF "$line" <<< "$results" || { say "missing: $line"; missing=$((missing + 1)); }
        done
        for n in 1 2; do
            line="XENUK $role $n ok md5=$UK_MD5"
            grep -qxF "$line" <<< "$results" || { say "missing: $line"; missing=$((missing + 1)); }
        done
    done
    # A guest's list run again after its kernel died, as Xen reported it
    # (dom0.sh): said, and counted in the result line.
    grep '^XENRETRY' <<< "$results" | sed 's/^/test-xen: RETRIED: /' || true
    retried=$(grep -c '^XENRETRY .* runs again' <<< "$results" || true)
    grep -q '^XENTEST-RESULTS-END$' <<< "$results" ||
        { say "missing: dom0's results block"; missing=$((missing + 1)); }
    n=$(grep -c '^XENTEST .* ok$\|^XENUK .* ok ' <<< "$results" || true)
    echo "test result: $([ "$missing" -eq 0 ] && echo ok || echo FAILED). $n passed; $missing failed (make test-xen; $retried guest list(s) run again after a fault Xen reported)"
    [ "$missing" -eq 0 ]
}
if [ "${1:-}" = --check ]; then
    check "$2" "${3:-}"
    exit
fi

bash scripts/setup.sh --install build xen
[ "$(id -u)" = 0 ] || { say "needs root (mmdebstrap and chroot build the dom0 image)" >&2; exit 1; }

# What runs in the guests, built on this Debian 12 host (dom0 is Debian 12
# too, and the domU gets the libraries copied in).
cargo build --release --locked -p vchan --example xen_peer
dune build bin/vchan_cat.exe test/readme/server.exe test/readme/client.exe
work=$root/target/xen
rm -rf "$work"
mkdir -p "$work/payload/bin" "$work/payload/data" "$work/payload/xen"
pl=$work/payload
gcc -O2 -Wall -Wextra -Werror -o "$pl/bin/xvc" test/xen/xvc.c -lxenvchan
cp _build/default/bin/vchan_cat.exe "$pl/bin/vchan-cat"
cp target/release/examples/xen_peer "$pl/bin/xen_peer"
cp _build/default/test/readme/server.exe "$pl/bin/readme-server"
cp _build/default/test/readme/client.exe "$pl/bin/readme-client"
proxy=$(ls /usr/lib/xen-*/bin/vchan-socket-proxy | head -n1)
cp "$proxy" "$pl/bin/"
cp test/xen/cases.sh test/xen/case-lists.sh test/xen/dom0.sh test/xen/domu-init "$pl/xen/"
# docs/real-xen.md's two-domain commands, run as they are (cases.sh).
sh scripts/readme-block.sh docs/real-xen.md two-domains.sh > "$pl/xen/two-domains.sh"
# The unikernel (test/mirage-xen/unikernels/echo: vchan-rs-xen for Solo5's
# xen target), built as make test-mirage-xen builds its unikernels (the
# OCaml 5.4.1 chroot with Solo5, made once and cached), booted by dom0.sh
# after the cases; the MD5 it must print of what it receives.
mkdir -p "$pl/unikernel"
say "building the unikernel (scripts/test-mirage-xen.sh --only echo/echo)"
bash scripts/test-mirage-xen.sh --only echo/echo > "$work/unikernel-build.log" 2>&1 ||
    { tail -n 30 "$work/unikernel-build.log"; say "FAILED: the unikernel does not build"; exit 1; }
cp _build/mirage-xen/_build/solo5/unikernels/echo/echo.exe "$pl/unikernel/echo.exe"
# A subset of the cases, for development: VCHAN_RS_XEN_CASES_PV and
# VCHAN_RS_XEN_CASES_PVH replace the lists (guests and check alike).
for t in pv pvh; do
    v=VCHAN_RS_XEN_CASES_${t^^}
    [ -z "${!v:-}" ] || echo "CASES_$t=\"${!v}\"" >> "$pl/xen/case-lists.sh"
done
head -c 4194304 /dev/urandom > "$pl/data/4M"
head -c 262144 /dev/urandom > "$pl/data/256K"
for f in 4M 256K; do sha256sum < "$pl/data/$f" | cut -d' ' -f1 > "$pl/data/$f.sha256"; done
echo "UK_MD5=$(md5sum < "$pl/data/256K" | cut -d' ' -f1)" >> "$pl/xen/case-lists.sh"
# No debug information: a smaller domU initramfs.
chmod u+w "$pl"/bin/*
strip "$pl"/bin/*
chmod -R a+rX "$pl"

# The dom0 image, cached by the digest of its recipe.
cache=${VCHAN_RS_XEN_CACHE:-$HOME/.cache/vchan-rs/xen}
key=$(cat test/xen/dom0-image.sh test/xen/init-dom0-initrd test/xen/extract-vmlinux.py | sha256sum | cut -c1-16)
img=$cache/dom0-$key
if [ ! -f "$img/dom0.ext4" ]; then
    say "building the dom0 image in $img (Debian bookworm by mmdebstrap; about 2 minutes)"
    mkdir -p "$cache"
    rm -rf "$cache"/dom0-*
    bash test/xen/dom0-image.sh "$img"
fi

# The domU's initramfs: busybox, the Xen modules, the payload and the
# libraries its programs need (xensim's are not wanted: the real ones,
# which the xen backend opens at run time, are listed by name).
ir=$work/domu
mkdir -p "$ir/bin" "$ir/tmp" "$ir/proc" "$ir/sys" "$ir/dev"
cp /bin/busybox "$ir/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$ir/bin/$a" ] || ln -s busybox "$ir/bin/$a"; done
cp -r "$img/domu-modules" "$ir/modules"
cp -r "$pl" "$ir/payload"
rm -f "$ir/payload/xen/dom0.sh"
install -m 755 test/xen/domu-init "$ir/init"
for t in read write exists ls rm list; do cp /usr/bin/xenstore "$ir/payload/bin/xenstore-$t"; done
libs=$(ldd "$pl"/bin/* /usr/bin/xenstore 2> /dev/null | grep -o '/[^ ]*\.so[^ ]*' | sort -u)
for l in $libs /lib/x86_64-linux-gnu/libxengnttab.so.1 /lib/x86_64-linux-gnu/libxenevtchn.so.1 \
    /lib/x86_64-linux-gnu/libxenstore.so.4 /lib/x86_64-linux-gnu/libgcc_s.so.1; do
    for d in $l $(ldd "$l" 2> /dev/null | grep -o '/[^ ]*\.so[^ ]*'); do
        mkdir -p "$ir$(dirname "$d")"
        cp -L "$d" "$ir$d"
    done
done
(cd "$ir" && find . | cpio --quiet -o -H newc | gzip -1) > "$pl/domu.cpio.gz"
rm -rf "$ir"
mke2fs -q -t ext4 -d "$pl" "$work/payload.ext4" 128M
say "payload ready after $(($(date +%s) - t0)) s; booting Xen under QEMU (TCG)"

console=$work/console.log
set +e
# Xen hides XSAVE from dom0 (dom0-cpuid) and from the PV domU (its
# cpuid line in dom0.sh): with it, programs in PV guests crashed at random
# under TCG (SSE registers read back as zero after a switch). QEMU 10 does
# the same, and there the PVH domU does not start.
# VCHAN_RS_XEN_LOCK=FILE: hold flock FILE around QEMU alone (a machine
# whose heavy runs share a lock: the builds above do not need it).
lock=()
[ -z "${VCHAN_RS_XEN_LOCK:-}" ] || lock=(flock "$VCHAN_RS_XEN_LOCK")
t1=$(date +%s)
"${lock[@]}" sh -c 'date +%s > "$0"; exec "$@"' "$work/qemu-start" timeout 1200 qemu-system-x86_64 -machine q35,accel=tcg -cpu max -m 1024 -smp 2 \
    -nographic -no-reboot -snapshot -serial mon:stdio -display none \
    -drive "file=$img/dom0.ext4,if=virtio,format=raw" \
    -drive "file=$work/payload.ext4,if=virtio,format=raw" \
    -kernel "$img/xen" \
    -append "console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=2 smap=0 dom0-cpuid=no-xsave" \
    -initrd "$img/vmlinux console=hvc0 earlyprintk=xen quiet,$img/initrd.cpio.gz" \
    < /dev/null > "$console" 2>&1
qemu=$?
set -e
grep -a '^XENTEST\|^XENTIME\|^XENUK\|^XENRETRY' "$console" | tr -d '\r' || true
say "QEMU exited with status $qemu after $(($(date +%s) - t0)) s (console: $console)"
t2=$(cat "$work/qemu-start" 2> /dev/null || echo "$t1")
say "QEMU ran $(($(date +%s) - t2)) s$([ ${#lock[@]} -eq 0 ] || echo " under ${lock[*]}, after $((t2 - t1)) s waiting for it")"

set +e
check "$console"
ok=$?
set -e
if [ "$ok" -ne 0 ] || [ "$qemu" -ne 0 ]; then
    say "FAILED (QEMU status $qemu) after $(($(date +%s) - t0)) s; see $console"
    exit 1
fi
say "ok: every expected result in $(($(date +%s) - t0)) s"
