//! Replays the committed fuzz corpora as plain tests (issue 12, "What to build" item 5).
//!
//! `scripts/fuzz.sh` runs the cargo-fuzz targets of `fuzz/` on nightly; what they keep is
//! committed: the minimized corpus of each target (`fuzz/corpus/<target>/`, inputs that
//! reach new code) and the crashers found and fixed since (`fuzz/regressions/<target>/`).
//! Here every one of those files goes through the very function its fuzz target calls
//! (`fuzz/src/entries.rs` and `fuzz/src/config_entry.rs`, included below), so a fixed
//! crash stays fixed on stable, in `cargo test`, without libFuzzer.

#[path = "../../fuzz/src/config_entry.rs"]
mod config_entry;
#[allow(dead_code)]
#[path = "../../fuzz/src/entries.rs"]
mod entries;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Returns the committed inputs of a target: its corpus and its fixed crashers.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable corpus directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Feeds every committed input of `target` to `entry` and fails naming each input that
/// panicked.
fn replay(target: &str, entry: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no committed corpus for fuzz target {target} under {}",
        fuzz_dir().display()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable corpus file");
            catch_unwind(AssertUnwindSafe(|| entry(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of fuzz target {target} panicked: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn issue_12_fuzz_corpus_decode_post() {
    replay("decode_post", entries::decode_post);
}

#[test]
fn issue_12_fuzz_corpus_analyzer() {
    replay("analyzer", entries::analyzer);
}

#[test]
fn issue_12_fuzz_corpus_search_query() {
    replay("search_query", entries::search_query);
}

#[test]
fn issue_12_fuzz_corpus_watchlist_query() {
    replay("watchlist_query", entries::watchlist_query);
}

#[test]
fn issue_12_fuzz_corpus_config() {
    replay("config", config_entry::config);
}

#[test]
fn issue_12_fuzz_corpus_journal() {
    replay("journal", entries::journal);
}

/// The replay itself can fail: an input that breaks an entry point's checks is reported.
#[test]
fn replay_reports_a_panicking_input() {
    fn rejects_everything(_: &[u8]) {
        panic!("rejected");
    }
    let outcome = catch_unwind(|| replay("decode_post", rejects_everything));
    assert!(outcome.is_err(), "a panicking entry point went unnoticed");
}
