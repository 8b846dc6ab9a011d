# vchan-rs — see README.md.
#   make          build everything (Rust, OCaml, vchan-cat, vchan-xensim); says
#                 which Debian packages are missing instead of installing them
#   make setup    install the missing Debian packages (build, test and doc)
#   make test     install what is missing (says so), then run every test
#   make demo     install what building needs (says so), build, move a file over vchan
#   make doc      API docs; prints where they are
#   make bench    vchan-rs (Rust, OCaml) vs Xen's C libxenvchan (on xensim), a
#                 Unix socket, a pipe and the shared-memory limit; prints a
#                 table, writes bench/results/bench.{csv,svg} (< 10 minutes;
#                 make test runs it on a few MiB). BENCH_ARGS: e.g. --runs 3
#   make test-xen vchan-rs between real Xen domains: Xen 4.17 under QEMU
#                 (TCG), a Debian dom0 and PV and PVH domUs (scripts/test-xen.sh;
#                 root; the dom0 image is cached in ~/.cache/vchan-rs/xen)
#   make install PREFIX=/usr/local    binaries, man pages, the OCaml library
#   make uninstall PREFIX=/usr/local
#   make release  dist/vchan-rs-VERSION.tar.gz with every crate vendored
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

CARGO_FLAGS := --release --locked --workspace
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^.version \(.*\).$$/\1/p' dune-project)
TARBALL := dist/vchan-rs-$(VERSION).tar.gz

.PHONY: all build check-build-deps setup test test-rust test-ocaml test-opam test-release \
	clippy test-xen demo doc doc-rust doc-ocaml bench bench-smoke fmt-check install uninstall release clean

all: build

check-build-deps:
	@bash scripts/setup.sh --check build

setup:
	@bash scripts/setup.sh --install build test doc

# dune's rules (ocaml/dune, bin/dune) run cargo in the same target/ dir.
build: check-build-deps
	cargo build $(CARGO_FLAGS)
	bash scripts/link-xensim.sh target
	dune build
	@echo "build: programs in _build/install/default/bin/ (make install PREFIX=... to install)"

test:
	@echo "test: installing the missing build and test packages first (scripts/setup.sh)"
	@bash scripts/setup.sh --install build test doc
	$(MAKE) fmt-check test-rust clippy test-ocaml bench-smoke test-opam doc test-release

test-rust:
	cargo test $(CARGO_FLAGS)

clippy:
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

test-ocaml:
	dune build
	dune test --force

# The opam file is dune's (dune-project), lint-clean, and asks for the Rust
# that Cargo.toml's rust-version names.
test-opam:
	bash scripts/check-opam.sh

test-xen: build
	bash scripts/test-xen.sh

release:
	bash scripts/release.sh dist

test-release: release
	bash scripts/release-check.sh $(TARBALL)

demo:
	@echo "demo: installing the missing build packages first (scripts/setup.sh)"
	@bash scripts/setup.sh --install build
	$(MAKE) build
	bash scripts/demo.sh

bench: build
	@bash scripts/setup.sh --check test
	target/release/vchan-bench $(BENCH_ARGS)

# Every row of make bench on a few MiB, so the bench cannot rot: it must
# run and verify its data (the figures mean nothing; nothing is timed).
bench-smoke: build
	target/release/vchan-bench --smoke --out target/bench-smoke

# Rust: missing docs and rustdoc warnings are errors (the public crates; the
# internal ones say they are internal). OCaml: every interface item has a
# doc comment, and odoc warnings are errors but for links to libraries
# outside the workspace (scripts/check-odoc-log.sh).
doc: doc-rust doc-ocaml
	@echo "doc: Rust API: $(CURDIR)/target/doc/vchan/index.html and $(CURDIR)/target/doc/vchan_core/index.html"
	@echo "doc: (internal crates, for contributors: target/doc/xensim, target/doc/vchan_rs_stubs, target/doc/vchan_bench)"
	@echo "doc: OCaml API: $(CURDIR)/_build/default/_doc/_html/index.html"

doc-rust:
	RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc --no-deps --locked --workspace

doc-ocaml:
	@bash scripts/setup.sh --check doc
	sh scripts/check-ocaml-docs.sh ocaml/*.mli ocaml/s.ml ocaml/lwt-unix/*.mli
	@mkdir -p _build
	dune build @doc 2> _build/odoc.log || { cat _build/odoc.log; exit 1; }
	sh scripts/check-odoc-log.sh < _build/odoc.log

install: build
	dune install --prefix "$(PREFIX)" vchan-rs
	@echo "install: binaries in $(PREFIX)/bin, man pages in $(PREFIX)/man/man1, the OCaml library in $(PREFIX)/lib/vchan-rs (OCAMLPATH=$(PREFIX)/lib), xensim's libraries in $(PREFIX)/lib/vchan-rs/xensim"

uninstall:
	dune uninstall --prefix "$(PREFIX)" vchan-rs

fmt-check:
	cargo fmt --all -- --check

clean:
	cargo clean
	dune clean
	rm -rf dist
