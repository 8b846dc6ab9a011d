//! The fuzz targets of vchan-rs: one function a target, each taking
//! arbitrary bytes and checking properties (no panic is the least of
//! them).
//!
//! - [`page`]: over vchan-core alone (the shared page and its rings):
//!   `orders`, `ring`. vchan-core's tests run them
//!   (`rust/vchan-core/tests/fuzz_driver.rs`).
//! - [`unix`] (feature `unix`): over the vchan crate's unix backend:
//!   `store`, `names`. vchan's tests run them
//!   (`rust/vchan/tests/fuzz_driver.rs`).
//!
//! The cargo-fuzz binaries (`fuzz_targets/`, feature `libfuzzer`, nightly:
//! `cargo +nightly fuzz run <target>`) call them on what libFuzzer makes;
//! [`seeded`] (feature `seeded`) calls them on random inputs from a fixed
//! seed, on stable, in `make test`.

pub mod input;
pub mod page;
#[cfg(feature = "seeded")]
pub mod seeded;
#[cfg(feature = "unix")]
pub mod unix;
