#!/usr/bin/env bash
# The Solo5 toolchain for unikernels, built from the pinned sources inside the
# OCaml 5.4.1 chroot (scripts/ocaml5-env.sh) and cached there:
#   Solo5          tenders (solo5-spt, solo5-hvt), solo5-elftool, the bindings
#                  of every target (spt, hvt, virtio, muen, xen) and the
#                  x86_64-solo5-none-static-{cc,ld,objcopy} toolchain
#   ocaml-solo5    the OCaml 5.4.1 cross-compiler for x86_64-solo5-none-static,
#                  with nolibc and openlibm; findlib toolchain "solo5"
#                  (/etc/ocamlfind.conf.d/solo5.conf in the chroot)
# Both go to /opt/vchan-rs-solo5 inside the chroot (so they are seen only by
# commands run there: `scripts/ocaml5-env.sh run DIR CMD`), with a stamp of
# the tarballs' and this recipe's hashes: a change rebuilds.
#   usage: solo5-toolchain.sh ensure     build if needed; print the prefix
#          solo5-toolchain.sh prefix     print the prefix (built or not)
# Sources: $VCHAN_RS_THIRDPARTY (default ../shared/thirdparty beside the
# project): solo5.tar.gz and ocaml-solo5.tar.gz (commits in its README.md).
# Without them, clone Solo5/solo5 and mirage/ocaml-solo5 at those commits and
# `git archive` each as NAME.tar.gz into a directory named by VCHAN_RS_THIRDPARTY.
# Cost here: ~15 s for Solo5, ~3 min for ocaml-solo5 (2 cores).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
project=$(dirname "$here")
thirdparty=${VCHAN_RS_THIRDPARTY:-$project/../shared/thirdparty}
prefix=/opt/vchan-rs-solo5
# Bump when the recipe below changes in a way the tarballs' hashes do not show.
recipe=1

case ${1:-} in
    ensure) ;;
    prefix) echo "$prefix"; exit 0 ;;
    *) echo "usage: $0 ensure | prefix" >&2; exit 2 ;;
esac

for t in solo5 ocaml-solo5; do
    [ -f "$thirdparty/$t.tar.gz" ] || {
        echo "solo5-toolchain: $thirdparty/$t.tar.gz missing (see ../shared/thirdparty/README.md;" \
            "set VCHAN_RS_THIRDPARTY to a directory holding the pinned tarballs)" >&2
        exit 1
    }
done

root=$(bash "$here/ocaml5-env.sh" ensure)
stamp=$( { echo "$recipe"; sha256sum < "$thirdparty/solo5.tar.gz"; \
    sha256sum < "$thirdparty/ocaml-solo5.tar.gz"; } | sha256sum | cut -c1-16)
if [ "$(cat "$root$prefix/.stamp" 2> /dev/null)" = "$stamp" ]; then
    echo "$prefix"
    exit 0
fi

echo "solo5-toolchain: building Solo5 and ocaml-solo5 in the OCaml 5.4.1 chroot (about 3 minutes)" >&2
build=/var/tmp/vchan-rs-solo5-build
rm -rf "$root$build" "$root$prefix"
mkdir -p "$root$build"
cp "$thirdparty/solo5.tar.gz" "$thirdparty/ocaml-solo5.tar.gz" "$root$build/"

# shellcheck disable=SC2016
bash "$here/ocaml5-env.sh" run "$project" env BUILD="$build" PREFIX="$prefix" JOBS="$(nproc)" bash -c '
set -euo pipefail
cd "$BUILD"
mkdir solo5 ocaml-solo5
tar -xzf solo5.tar.gz -C solo5 --strip-components=1
tar -xzf ocaml-solo5.tar.gz -C ocaml-solo5 --strip-components=1

echo "solo5-toolchain: Solo5" >&2
cd "$BUILD/solo5"
./configure.sh --prefix="$PREFIX" > configure.log
make -j"$JOBS" > make.log 2>&1 || { tail -40 make.log; exit 1; }
make install > install.log 2>&1 || { tail -40 install.log; exit 1; }
export PATH="$PREFIX/bin:$PATH"

echo "solo5-toolchain: ocaml-solo5 (OCaml $(ocamlc -version) cross-compiler)" >&2
cd "$BUILD/ocaml-solo5"
version=$(ocamlc -version)
[ -d "patches/$version" ] || { echo "solo5-toolchain: ocaml-solo5 has no patches for OCaml $version" >&2; exit 1; }
# The OCaml sources: Debian ocaml-source holds the pristine tarball (opam
# would copy ocaml-src and apply the patches with opatch, not in Debian).
src=$(ls /usr/src/ocaml-source-"$version".tar* 2> /dev/null | head -n 1)
[ -n "$src" ] || { echo "solo5-toolchain: /usr/src/ocaml-source-$version.tar* missing (package ocaml-source)" >&2; exit 1; }
mkdir orig && tar -xf "$src" -C orig
orig=$(find orig -name "ocaml_$version.orig.tar.*" | head -n 1)
[ -n "$orig" ] || { echo "solo5-toolchain: no ocaml_$version.orig.tar.* in $src" >&2; exit 1; }
mkdir ocaml && tar -xf "$orig" -C ocaml --strip-components=1
for p in "patches/$version"/*.patch; do patch -d ocaml -p1 -s < "$p"; done
./configure.sh --prefix="$PREFIX" --target=x86_64-solo5-none-static > configure.log
make -j"$JOBS" > make.log 2>&1 || { tail -60 make.log; exit 1; }
make ocaml-solo5.install > install.log 2>&1 || { tail -40 install.log; exit 1; }
make install-ocaml >> install.log 2>&1 || { tail -40 install.log; exit 1; }
opam-installer --prefix="$PREFIX" ocaml-solo5.install >> install.log 2>&1 || { tail -40 install.log; exit 1; }
# Debian findlib reads toolchains from /etc/ocamlfind.conf.d, not from
# $PREFIX/lib/findlib.conf.d.
conf=$(find "$PREFIX/lib" -name solo5.conf -path "*findlib.conf.d*" | head -n 1)
[ -n "$conf" ] || { echo "solo5-toolchain: no solo5.conf installed" >&2; exit 1; }
mkdir -p /etc/ocamlfind.conf.d
ln -sf "$conf" /etc/ocamlfind.conf.d/solo5.conf
ocamlfind -toolchain solo5 ocamlopt -version > /dev/null
'
rm -rf "$root$build"
echo "$stamp" > "$root$prefix/.stamp"
echo "solo5-toolchain: ready in the chroot at $prefix" >&2
echo "$prefix"
