#!/usr/bin/env bash
# build-archive.sh for the bare-metal x86_64 target a unikernel links
# (ocaml/dune's rule for contexts other than the default one).
exec bash "$(dirname "$0")/build-archive.sh" "$1" x86_64-unknown-none
