//! Vigie's fuzz targets' entry points (`fuzz_targets/*.rs` call them).
//!
//! `entries.rs` and `config_entry.rs` are also included, as modules, by
//! `tests/tests/fuzz_regressions.rs`, which replays the committed corpora on stable. The
//! `config` target needs the whole daemon, so it sits behind the default feature `daemon`:
//! `cargo fuzz build --no-default-features` builds the other targets alone.

mod entries;
pub use entries::*;

#[cfg(feature = "daemon")]
mod config_entry;
#[cfg(feature = "daemon")]
pub use config_entry::config;
