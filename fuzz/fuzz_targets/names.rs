//! cargo-fuzz target `names`: see fuzz/src/unix.rs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vchan_fuzz::unix::names(data));
