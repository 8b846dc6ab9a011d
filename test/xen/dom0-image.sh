#!/usr/bin/env bash
# Build the dom0 image for make test-xen into DIR (made fresh; the caller
# caches it by this file's digest): Debian bookworm with Xen 4.17 as an ext4
# image, Xen itself ungzipped for QEMU's multiboot loader, the kernel
# uncompressed for dom0 and compressed for the domUs, a small busybox initrd
# that mounts the image, and the kernel modules a busybox domU needs.
# usage: dom0-image.sh DIR      (root: mmdebstrap, mount-free mke2fs -d)
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${out%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

pkgs=linux-image-amd64,xen-hypervisor-4.17-amd64,xen-utils-4.17,xenstore-utils
pkgs+=,busybox,kmod,procps,iproute2,udev
# What vchan-rs's OCaml programs link at run time (Lwt's libev).
pkgs+=,libev4
# No initramfs (dom0 boots from our own, below; making Debian's is the
# slowest step), no documentation.
noinitramfs='chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
ln -s /bin/true "$1/usr/sbin/update-initramfs"'
mmdebstrap --variant=minbase --quiet --include="$pkgs" \
    --essential-hook="$noinitramfs" \
    --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-exclude=/usr/share/man/* \
    --dpkgopt=path-exclude=/usr/share/locale/* \
    --customize-hook='rm -f "$1"/etc/resolv.conf "$1"/etc/hostname' \
    bookworm "$root" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"

kver=$(ls "$root/lib/modules")
[ "$(wc -w <<< "$kver")" = 1 ] || { echo "dom0-image: not one kernel: $kver" >&2; exit 1; }
xen=$(ls "$root"/boot/xen-4.17*-amd64.gz | head -n1)
gunzip -c "$xen" > "$tmp/xen"
cp "$root/boot/vmlinuz-$kver" "$tmp/vmlinuz"
python3 "$here/extract-vmlinux.py" "$tmp/vmlinuz" "$tmp/vmlinux"

# Modules, in load order (with their dependencies), from the image's tree.
mods() { # DEST MODULE...
    local dest=$1; shift
    mkdir -p "$dest"
    : > "$dest/order"
    chroot "$root" modprobe -a -S "$kver" --show-depends "$@" | awk '$1 == "insmod" { print $2 }' |
        while read -r m; do
            name=$(basename "$m")
            [ -e "$dest/$name" ] || { cp "$root/$m" "$dest/$name"; echo "$name" >> "$dest/order"; }
        done
}
mods "$tmp/initrd/modules" virtio_pci virtio_blk ext4
mods "$tmp/domu-modules" xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs

# dom0's initrd: busybox, the modules for its disks, and init-dom0-initrd.
ir=$tmp/initrd
mkdir -p "$ir"/{bin,dev,proc,sys,newroot}
cp /bin/busybox "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"
install -m 755 "$here/init-dom0-initrd" "$ir/init"
(cd "$ir" && find . | cpio --quiet -o -H newc | gzip -1) > "$tmp/initrd.cpio.gz"
rm -rf "$ir"

mke2fs -q -t ext4 -L dom0 -d "$root" "$tmp/dom0.ext4" 1200M
rm -rf "$root"
echo "$kver" > "$tmp/kernel-version"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
