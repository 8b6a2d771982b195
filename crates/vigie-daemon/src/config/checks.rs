//! Checks of the checked form that go beyond one component: upper bounds on the daemon's
//! own keys and `[index]` (every value feeding a `Duration`, time arithmetic or an
//! allocation has one, so no value can panic or exhaust memory), and the consistency of
//! `[source]` with `[kafka]`.

use super::{invalid, Config, ConfigError, SourceKind};

/// Longest duration a key may hold: 10 years.
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;
/// Longest commit or snapshot interval: one day.
pub const MAX_INTERVAL_SECS: u64 = 86_400;
/// Largest batch or commit size.
pub const MAX_BATCH: u64 = 1_000_000;
/// Largest message or line accepted.
pub const MAX_MESSAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Longest retention.
pub const MAX_RETENTION_DAYS: u64 = 36_500;
/// Most memory for the index writer.
pub const MAX_WRITER_MEMORY_MB: u64 = 65_536;
/// Most index writer threads.
pub const MAX_WRITER_THREADS: usize = 64;

impl Config {
    /// Upper bounds of the daemon's own keys and of `[index]`: every one feeds a
    /// `Duration`, time arithmetic or an allocation.
    pub(super) fn check_bounds(&self) -> Result<(), ConfigError> {
        let at_most = |key: &str, value: u64, max: u64, what: &str| {
            if value > max {
                Err(invalid(key, format!("must be at most {max} ({what})")))
            } else {
                Ok(())
            }
        };
        at_most(
            "input.max_future_secs",
            self.input.max_future_secs,
            MAX_DURATION_SECS,
            "10 years",
        )?;
        at_most(
            "input.max_message_bytes",
            self.input.max_message_bytes as u64,
            MAX_MESSAGE_BYTES,
            "256 MiB",
        )?;
        at_most(
            "source.batch_size",
            self.source.batch_size as u64,
            MAX_BATCH,
            "one million",
        )?;
        at_most(
            "index.commit_every_posts",
            self.index.commit_every_posts as u64,
            MAX_BATCH,
            "one million",
        )?;
        at_most(
            "index.commit_interval_secs",
            self.index.commit_interval_secs,
            MAX_INTERVAL_SECS,
            "one day",
        )?;
        at_most(
            "index.retention_days",
            u64::from(self.index.retention_days.unwrap_or(0)),
            MAX_RETENTION_DAYS,
            "100 years",
        )?;
        at_most(
            "index.writer_memory_mb",
            self.index.writer_memory_mb as u64,
            MAX_WRITER_MEMORY_MB,
            "64 GiB",
        )?;
        if let Some(threads) = self.index.writer_threads {
            if !(1..=MAX_WRITER_THREADS).contains(&threads) {
                return Err(invalid(
                    "index.writer_threads",
                    format!("must be between 1 and {MAX_WRITER_THREADS}"),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a file that contradicts itself about where posts come from.
    pub(super) fn check_source(&self, source_given: bool) -> Result<(), ConfigError> {
        let kind = self.source.kind;
        if self.kafka.is_some() && kind != SourceKind::Kafka {
            return Err(invalid(
                "source.kind",
                if source_given {
                    format!(
                        "is \"{}\" but a [kafka] section is set: set source.kind = \"kafka\" or remove [kafka]",
                        kind.as_str()
                    )
                } else {
                    "is missing but a [kafka] section is set: add `kind = \"kafka\"` under [source] (or remove [kafka])".to_owned()
                },
            ));
        }
        if !self.source.files.is_empty() && kind != SourceKind::Files {
            return Err(invalid(
                "source.files",
                format!(
                    "is set but source.kind is \"{}\"{}: set source.kind = \"files\" or remove source.files",
                    kind.as_str(),
                    if source_given { "" } else { " (the default)" }
                ),
            ));
        }
        Ok(())
    }
}
