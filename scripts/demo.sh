#!/usr/bin/env bash
# The demo: until vchan-cat exists, the core's two-thread ring demo.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked -q -p vchan-core --example demo
