//! The fuzz targets over the unix backend (`fuzz/src/unix.rs`: `store`,
//! `names`) on stable: a fixed-seed driver ([`vchan_fuzz::seeded`]),
//! 50,000 cases, repeatable run to run. vchan-core's own
//! `tests/fuzz_driver.rs` runs the other two. The long, coverage-guided
//! runs are `cargo +nightly fuzz run <target>` in `fuzz/`.

use vchan_fuzz::{seeded, unix};

#[test]
fn fuzz_targets_seeded() {
    seeded::run("store", 20_000, unix::store_paths);
    seeded::run("names", 30_000, unix::names);
}
