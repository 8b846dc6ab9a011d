#!/usr/bin/env bash
# Idempotent set-up of a Debian 12 machine for building and testing vchan-rs.
# Installs only what is missing (through sudo when not root); takes well under
# a second when everything is present.
set -euo pipefail

PKGS=(gcc make pkg-config binutils
      ocaml-nox ocaml-dune ocaml-findlib ocaml-odoc
      liblwt-ocaml-dev libcstruct-ocaml-dev libcmdliner-ocaml-dev
      libfmt-ocaml-dev liblogs-ocaml-dev libalcotest-ocaml-dev
      libounit-ocaml-dev libqcheck-ocaml-dev
      libxen-dev xen-utils-4.17)

missing=()
status=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
for p in "${PKGS[@]}"; do
  grep -qx "$p installed" <<<"$status" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "setup: missing packages ${missing[*]}; run as root or install sudo" >&2; exit 1
  fi
  echo "setup: installing ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust stable (>= 1.83) with rustup" >&2
  exit 1
fi
# The freestanding archive (rust/vchan-freestanding) is also built for
# bare-metal x86_64, as a unikernel links it. binutils provides objcopy.
if ! rustc --print sysroot >/dev/null 2>&1 ||
   [ ! -d "$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-none" ]; then
  if command -v rustup >/dev/null; then
    echo "setup: rustup target add x86_64-unknown-none"
    rustup target add x86_64-unknown-none
  else
    echo "setup: Rust target x86_64-unknown-none missing and no rustup to add it" >&2
    exit 1
  fi
fi
echo "setup: ok (${#missing[@]} package(s) installed; $(cargo --version))"
