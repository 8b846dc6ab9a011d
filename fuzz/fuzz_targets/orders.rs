//! cargo-fuzz target `orders`: see fuzz/src/page.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vchan_fuzz::page::orders(data));
