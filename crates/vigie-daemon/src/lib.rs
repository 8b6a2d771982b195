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
pub mod timearg;
