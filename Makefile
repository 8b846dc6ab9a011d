# vchan-rs — see README.md.
#   make        set up the machine if needed, build everything (Rust, OCaml, vchan-cat, xensim)
#   make test   set up the machine if needed, then run every test
#   make demo   set up, build, and move a file over vchan
#   make doc    API docs: target/doc (Rust), _build/default/_doc/_html (OCaml)
#   make bench  vchan-rs (Rust, OCaml) vs Xen's C libxenvchan (on xensim), a
#               Unix socket, a pipe and the shared-memory limit; prints a
#               table, writes bench/results/bench.{csv,svg} (< 10 minutes;
#               make test runs it on a few MiB). BENCH_ARGS: e.g. --runs 3
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

CARGO_FLAGS := --release --locked --workspace

.PHONY: all build setup test test-rust test-ocaml clippy demo doc bench bench-smoke fmt-check clean

all: setup build

setup:
	@bash scripts/setup.sh

# dune's rule in ocaml/dune runs cargo for the stubs in the same target/ dir.
build:
	cargo build $(CARGO_FLAGS)
	bash scripts/link-xensim.sh target
	dune build

test: setup
	$(MAKE) fmt-check test-rust clippy test-ocaml bench-smoke

test-rust:
	cargo test $(CARGO_FLAGS)

clippy:
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

test-ocaml:
	dune build
	dune test --force

demo: setup build
	bash scripts/demo.sh

bench: setup build
	target/release/vchan-bench $(BENCH_ARGS)

# Every row of make bench on a few MiB, so the bench cannot rot: it must
# run and verify its data (the figures mean nothing; nothing is timed).
bench-smoke: build
	target/release/vchan-bench --smoke --out target/bench-smoke

doc:
	cargo doc --no-deps --locked --workspace
	dune build @doc

fmt-check:
	cargo fmt --all -- --check

clean:
	cargo clean
	dune clean
