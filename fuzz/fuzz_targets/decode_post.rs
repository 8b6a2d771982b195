//! Fuzz target: see `vigie_fuzz::decode_post`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie_fuzz::decode_post(data));
