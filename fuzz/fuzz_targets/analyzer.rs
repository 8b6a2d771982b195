//! Fuzz target: see `vigie_fuzz::analyzer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie_fuzz::analyzer(data));
