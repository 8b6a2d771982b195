//! Vigie's daemon: composes the configuration, wires the stages and runs them.
//!
//! The `vigie` binary (`main.rs`) parses the command line, sets up logging and signals,
//! and calls into [`commands`]. Everything that touches wall-clock time, signals or the
//! terminal lives here, so the stage crates stay deterministic and testable.
#![warn(missing_docs)]

pub mod alerting;
pub mod commands;
pub mod config;
pub mod detection;
pub mod http;
pub mod metrics;
pub mod runner;
pub mod stages;
pub mod timearg;

/// Returns an error with its causes on one line (`outer: cause: root`), for logs and for
/// the message of a 400.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
