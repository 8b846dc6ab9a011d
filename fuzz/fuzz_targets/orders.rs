//! cargo-fuzz target `orders`: see rust/vchan/tests/fuzz/targets.rs.
#![no_main]

#[path = "../../rust/vchan/tests/fuzz/targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::orders(data));
