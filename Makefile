# vchan-rs — see README.md.
#   make          build everything (Rust, OCaml, vchan-cat, vchan-xensim); says
#                 which Debian packages are missing instead of installing them
#   make setup    install the missing Debian packages (build, test and doc)
#   make test     install what is missing (says so), then run every test
#   make test-ocaml5  the tests on OCaml 5.4.1, dune 3, lwt 6 and Xen 4.20's
#                 tools, in a cached Debian sid chroot (scripts/test-ocaml5.sh;
#                 root or sudo, mmdebstrap and rsync: installs them)
#   make demo     install what building needs (says so), build, move a file over vchan
#   make doc      API docs; prints where they are
#   make test-unikernel  the functor's cases in a Solo5 (spt) unikernel built
#                 with OCaml 5.4.1 and ocaml-solo5 in a chroot, and their
#                 timings next to a Linux process (scripts/test-unikernel.sh);
#                 then make test-mirage-xen: vchan-rs-xen, ocaml-vchan's
#                 Mirage tests and mirage-qubes linked for Solo5's xen target,
#                 and docs/mirage.md's config.ml through mirage configure
#   make bench    vchan-rs (Rust, OCaml) vs Xen's C libxenvchan (on xensim), a
#                 Unix socket, a pipe and the shared-memory limit; prints a
#                 table, writes target/bench/bench.csv (make test runs it
#                 on a few MiB). BENCH_ARGS: e.g. --runs 3
#   make bench-results  make bench into the committed bench/results (the
#                 figures of docs/benchmarks.md), on purpose only
#   make test-xen vchan-rs between real Xen domains: Xen 4.17 under QEMU
#                 (TCG), a Debian dom0 and PV and PVH domUs (scripts/test-xen.sh;
#                 root; the dom0 image is cached in ~/.cache/vchan-rs/xen)
#   make install PREFIX=/usr/local    binaries, man pages, the OCaml libraries
#   make uninstall PREFIX=/usr/local
#   make release  dist/vchan-rs-VERSION.tar.gz with every crate vendored
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

CARGO_FLAGS := --release --locked --workspace
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^.version \(.*\).$$/\1/p' dune-project)
TARBALL := dist/vchan-rs-$(VERSION).tar.gz

.PHONY: all build check-build-deps setup test test-rust test-crates test-ocaml test-ocaml5 test-opam test-release \
	clippy check-docs check-modules demo doc doc-rust doc-ocaml bench bench-results bench-smoke test-ocaml-vchan fmt-check install uninstall release clean \
	test-mirage-xen test-unikernel test-xen

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
	$(MAKE) fmt-check check-docs check-modules test-rust test-crates clippy test-ocaml test-ocaml-vchan bench-smoke test-opam doc test-release

test-rust:
	cargo test $(CARGO_FLAGS)

# Every code block of README.md and docs/ is run by a test (or is text, or
# says why it cannot be run here);
# no issue numbers where users read. The figures of docs/benchmarks.md are
# checked against bench/results/bench.csv by vchan-bench's own test
# (test-rust).
check-docs:
	sh scripts/check-docs.sh

# No two modules of a crate in rust/ name each other, directly or round a
# loop, and no source file there (outside tests/) or in bench/ is over 700
# lines (scripts/check-modules.py; a second, no build).
check-modules:
	python3 scripts/check-modules.py

# The two public crates package and build as crates.io would have them.
# cargo takes a registry crate of an unchanged version as unchanged (its
# unpacked copy in CARGO_HOME/registry/src/-<hash>/ of the temporary local
# registry, its build in the target directory): remove both, so that vchan
# is verified against today's vchan-core (a few seconds).
test-crates:
	rm -rf "$${CARGO_HOME:-$$HOME/.cargo}"/registry/src/-*/vchan-core-* target/package-check
	cargo package --quiet --allow-dirty --target-dir target/package-check -p vchan-core -p vchan

clippy:
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

test-ocaml:
	dune build
	dune test --force

# mirage/ocaml-vchan's xencat (built from ../shared/thirdparty's pinned
# sources in target/ocaml-vchan) and vchan-cat, both ways, both roles,
# under vchan-xensim (after test-ocaml's build).
test-ocaml-vchan:
	bash scripts/test-ocaml-vchan.sh

# The same tests on OCaml 5.4.1 (a Debian sid chroot made by
# scripts/ocaml5-env.sh, on a cached copy of this tree): not part of make test.
test-ocaml5:
	bash scripts/test-ocaml5.sh

# Not part of make test: it needs the OCaml 5.4.1 chroot, Solo5 and
# ocaml-solo5 (built and cached by scripts/solo5-toolchain.sh) and the pinned
# sources of ../shared/thirdparty.
test-unikernel:
	bash scripts/test-unikernel.sh
	$(MAKE) test-mirage-xen

# The opam files are dune's (dune-project), lint-clean, list the crates of
# Cargo.lock they need as extra-sources and ask for the Rust that
# Cargo.toml's rust-version names; and what opam pin does builds offline and
# installs, vchan-rs alone, then vchan-rs-unix over it.
test-opam:
	bash scripts/check-opam.sh
	bash scripts/test-opam-pin.sh

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

# Writes target/bench/; bench-results regenerates the committed figures
# (bench/results, whose tables docs/benchmarks.md must then carry).
bench: build
	@bash scripts/setup.sh --check test
	target/release/vchan-bench $(BENCH_ARGS)

bench-results: build
	@bash scripts/setup.sh --check test
	target/release/vchan-bench --out bench/results $(BENCH_ARGS)

# Every row of make bench on a few MiB, so the bench cannot rot: it must
# run and verify its data (the figures mean nothing; nothing is timed).
bench-smoke: build
	target/release/vchan-bench --smoke --out target/bench-smoke

# Rust: missing docs and rustdoc warnings are errors; only the public crates
# (vchan, vchan-core) are documented (the others say doc = false). OCaml: every interface item has a
# doc comment, and odoc warnings are errors but for links to libraries
# outside the workspace (scripts/check-odoc-log.sh).
doc: doc-rust doc-ocaml
	@echo "doc: Rust API: $(CURDIR)/target/doc/vchan/index.html and $(CURDIR)/target/doc/vchan_core/index.html"
	@echo "doc: OCaml API: $(CURDIR)/_build/default/_doc/_html/index.html"

doc-rust:
	RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc --no-deps --locked --workspace

doc-ocaml:
	@bash scripts/setup.sh --check doc
	sh scripts/check-ocaml-docs.sh ocaml/*.mli ocaml/s.ml ocaml/lwt-unix/*.mli ocaml/xen/*.mli
	@mkdir -p _build
	dune build @doc 2> _build/odoc.log || { cat _build/odoc.log; exit 1; }
	sh scripts/check-odoc-log.sh < _build/odoc.log

install: build
	dune install --prefix "$(PREFIX)" vchan-rs vchan-rs-unix
	@echo "install: binaries in $(PREFIX)/bin, man pages in $(PREFIX)/man/man1, the OCaml libraries in $(PREFIX)/lib/vchan-rs and $(PREFIX)/lib/vchan-rs-unix (OCAMLPATH=$(PREFIX)/lib), xensim's libraries in $(PREFIX)/lib/vchan-rs-unix/xensim"

uninstall:
	dune uninstall --prefix "$(PREFIX)" vchan-rs vchan-rs-unix

# vchan-rs-xen for Solo5's xen target, against mirage-xen from the pinned
# sources (../shared/thirdparty), in the OCaml 5.4.1 chroot; ocaml-vchan's
# lib_test/mirage unikernels and mirage-qubes, names changed, link for Xen;
# the mirage tool, built from its pinned source, configures docs/mirage.md's
# config.ml for xen and hvt.
test-mirage-xen:
	bash scripts/test-mirage-xen.sh

fmt-check:
	cargo fmt --all -- --check

clean:
	cargo clean
	dune clean
	rm -rf dist
