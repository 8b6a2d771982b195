//! Vigie's benchmarks. `benches/stages.rs` holds the criterion micro-benchmarks; the
//! `e2e` binary (`src/bin/e2e.rs`) replays a whole file through the real pipeline beside
//! a plain-Tantivy baseline and prints posts/s, latency percentiles and peak RSS.
