//! The fuzz targets over vchan-core (`fuzz/src/page.rs`: `orders`, `ring`)
//! on stable: a fixed-seed driver ([`vchan_fuzz::seeded`]), 70,000 cases,
//! repeatable run to run. The long, coverage-guided runs are `cargo
//! +nightly fuzz run <target>` in `fuzz/`.

use vchan_fuzz::{page, seeded};

#[test]
fn fuzz_targets_seeded() {
    seeded::run("orders", 40_000, page::orders);
    seeded::run("ring", 30_000, page::ring);
}
