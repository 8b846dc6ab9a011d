# vchan-rs — see README.md.
#   make        build everything (Rust workspace, OCaml library, vchan-cat)
#   make test   set up the machine if needed, then run every test
#   make demo   set up, build, and move a file over vchan
export PATH := $(HOME)/.cargo/bin:$(PATH)
export CARGO_TERM_COLOR := never

CARGO_FLAGS := --release --locked --workspace
# The OCaml part builds once there is a dune-project and a dune file under ocaml/ or bin/.
HAVE_OCAML := $(and $(wildcard dune-project),$(wildcard ocaml/dune ocaml/*/dune bin/dune))

.PHONY: all build setup test test-rust test-ocaml clippy demo fmt-check clean

all: build

setup:
	@bash scripts/setup.sh

build:
	cargo build $(CARGO_FLAGS)
	bash scripts/link-xensim.sh target
ifneq ($(HAVE_OCAML),)
	dune build
endif

test: setup
	$(MAKE) fmt-check test-rust clippy test-ocaml

test-rust:
	cargo test $(CARGO_FLAGS)

clippy:
	cargo clippy $(CARGO_FLAGS) --all-targets -- -D warnings

test-ocaml:
ifneq ($(HAVE_OCAML),)
	dune build
	dune test --force
else
	@echo "test-ocaml: no OCaml library yet"
endif

demo: setup build
	bash scripts/demo.sh

fmt-check:
	cargo fmt --all -- --check

clean:
	cargo clean
ifneq ($(HAVE_OCAML),)
	dune clean
endif
