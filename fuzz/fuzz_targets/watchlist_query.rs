//! Fuzz target: see `vigie_fuzz::watchlist_query`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vigie_fuzz::watchlist_query(data));
