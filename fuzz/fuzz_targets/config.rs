//! Fuzz target: see `vigie_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie_fuzz::config(data));
