//! `vigie`: the command-line entry point. Parses arguments, sets up logging and signals,
//! runs a subcommand and prints any error chain once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// mimalloc rather than glibc's malloc: the detector and the index allocate many small,
/// short-lived strings and vectors per post, and glibc's allocator was a quarter of a
/// replay's profile (issue 9).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use vigie_daemon::commands::{self, ReplayOptions, SearchOptions};
use vigie_daemon::config::Speed;
use vigie_daemon::timearg::parse_time_arg;
use vigie_index::{SearchOrder, SearchRequest};

/// Vigie warns rapid-response teams when a disinformation narrative starts to spread.
///
/// With no configuration, `vigie run` replays a built-in sample of real posts through the
/// whole pipeline and serves search and metrics on http://127.0.0.1:9464/.
#[derive(Debug, Parser)]
#[command(name = "vigie", version, propagate_version = true)]
struct Cli {
    /// Log format: `human` (default) or `json` (one object per line, for log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "VIGIE_LOG_FORMAT")]
    log_format: LogFormat,

    /// Log filter, e.g. `info` or `vigie_daemon=debug,info` (also RUST_LOG).
    #[arg(long, global = true, env = "VIGIE_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the daemon: consumes posts, indexes them, serves HTTP, until SIGINT/SIGTERM.
    ///
    /// Without --config, replays the built-in sample (no Kafka needed).
    Run {
        /// Configuration file (TOML); see deploy/vigie.example.toml.
        #[arg(long, short, env = "VIGIE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Replays JSONL files (plain, .gz, or - for stdin) through the full pipeline and exits.
    Replay {
        /// Files to replay, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `max`, or a multiple of event time (60 = one hour of posts per minute).
        #[arg(long, default_value = "max", value_parser = parse_speed)]
        speed: Speed,
        /// Data directory for the index and rejected.jsonl (default: the config's data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file for analyzer, index and input settings.
        #[arg(long, short, env = "VIGIE_CONFIG")]
        config: Option<PathBuf>,
        /// Never show the progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Backtest the alert rules: write every notification (firing, updated, resolved,
        /// with event times) to this JSONL file instead of the configured sinks.
        #[arg(long, value_name = "FILE")]
        alerts_to: Option<PathBuf>,
    },
    /// Searches the index of a data directory.
    Search {
        /// Data directory of a daemon or a replay.
        #[arg(long)]
        data_dir: PathBuf,
        /// Query: words, "phrases", #hashtags, author:ID, lang:ru, domain:example.com,
        /// AND/OR/NOT, +must -must_not. Empty or * lists everything.
        query: String,
        /// Only posts published at or after this time (RFC 3339, YYYY-MM-DD or Unix seconds).
        #[arg(long, value_parser = parse_time_arg)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Only posts published before this time.
        #[arg(long, value_parser = parse_time_arg)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Only posts in this language (ISO 639-1, as analyzed).
        #[arg(long)]
        lang: Option<String>,
        /// Number of posts to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// `newest` first or by `relevance`.
        #[arg(long, value_enum, default_value_t = Order::Newest)]
        order: Order,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Configuration file (analyzer settings must match the index's).
        #[arg(long, short, env = "VIGIE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Replays labelled JSONL through the detector and prints detection quality against the
    /// labels (`label_event`, `label_narrative`), beside a per-hashtag z-score baseline.
    Eval {
        /// Labelled files (JSONL or .jsonl.gz), replayed in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Configuration file; its `[detect]` section is evaluated.
        #[arg(long, short, env = "VIGIE_CONFIG")]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Posts an event label needs to count.
        #[arg(long, default_value_t = 30)]
        min_posts: usize,
        /// Posts a narrative label needs to count.
        #[arg(long, default_value_t = 10)]
        min_narrative_posts: usize,
        /// Severity from which a narrative counts as an alert.
        #[arg(long, value_enum, default_value_t = AlertSeverity::Medium)]
        alert_severity: AlertSeverity,
        /// Also rerun with each main parameter at -20% and +20% (the claim parameters
        /// included) and print the recall sweep of both levels.
        #[arg(long)]
        sweep: bool,
        /// Report when this hashtag's campaign was first alerted (e.g. kochfarms).
        #[arg(long)]
        focus_hashtag: Option<String>,
        /// Rows of the per-claim table (the largest claims first).
        #[arg(long, default_value_t = vigie_eval::LARGEST_CLAIMS)]
        claim_rows: usize,
        /// Also write every alert of the main replay (storylines, then claims) to FILE as
        /// JSON lines: what `scripts/same-alerts.sh` compares across changes.
        #[arg(long, value_name = "FILE")]
        alerts_out: Option<PathBuf>,
    },
    /// Writes posts to a Kafka topic, one message per line (key = post id), paced by event
    /// time: the demo producer of docker-compose.yml, and a way to replay files into Kafka.
    Produce {
        /// Files to produce (JSONL, .gz, or - for stdin).
        files: Vec<PathBuf>,
        /// Produce the built-in sample of real posts.
        #[arg(long)]
        sample: bool,
        /// Bootstrap brokers, host:port[,host:port].
        #[arg(long, env = "VIGIE_KAFKA__BROKERS")]
        brokers: String,
        /// Topic to write to.
        #[arg(long, default_value = "posts")]
        topic: String,
        /// `max`, or a multiple of event time (60 = one hour of posts per minute).
        #[arg(long, default_value = "max", value_parser = parse_speed)]
        speed: Speed,
        /// librdkafka property KEY=VALUE (TLS, SASL…); repeatable.
        #[arg(long = "property", value_parser = parse_property)]
        properties: Vec<(String, String)>,
    },
    /// Validates a configuration file and prints the effective configuration.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlertSeverity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Order {
    Newest,
    Relevance,
}

fn parse_speed(text: &str) -> Result<Speed, String> {
    text.parse()
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    Ok((key.trim().to_owned(), value.to_owned()))
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.with_ansi(commands::stderr_is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("vigie-rt")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    match command {
        Command::Run { config } => {
            let config = commands::load_run_config(config.as_deref())?;
            commands::spawn_signal_handler(shutdown.clone());
            commands::run(config, shutdown).await
        }
        Command::Replay {
            files,
            speed,
            data_dir,
            config,
            no_progress,
            alerts_to,
        } => {
            let config = commands::load_config(config.as_deref())?;
            commands::spawn_signal_handler(shutdown.clone());
            let data_dir_shown = data_dir
                .clone()
                .unwrap_or_else(|| config.raw.data_dir.clone());
            let options = ReplayOptions {
                files,
                speed,
                data_dir,
                progress: !no_progress && commands::stderr_is_terminal(),
                alerts_to: alerts_to.clone(),
            };
            let summary = commands::replay(config, options, shutdown).await?;
            commands::print_summary(&summary, &data_dir_shown, &mut std::io::stdout().lock())?;
            if let Some(path) = alerts_to {
                commands::print_backtest(&path, &mut std::io::stdout().lock())?;
            }
            Ok(())
        }
        Command::Search {
            data_dir,
            query,
            since,
            until,
            lang,
            limit,
            order,
            json,
            config,
        } => {
            let config = commands::load_config(config.as_deref())?;
            let order = match order {
                Order::Newest => SearchOrder::Newest,
                Order::Relevance => SearchOrder::Relevance,
            };
            let request = SearchRequest {
                query,
                since,
                until,
                limit,
                order,
                lang,
            };
            let options = SearchOptions {
                data_dir,
                request,
                json,
            };
            commands::search(&config, &options, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Eval {
            files,
            config,
            json,
            min_posts,
            min_narrative_posts,
            alert_severity,
            sweep,
            focus_hashtag,
            claim_rows,
            alerts_out,
        } => {
            let config = commands::load_config(config.as_deref())?;
            let options = vigie_eval::EvalOptions {
                min_event_posts: min_posts,
                min_narrative_posts,
                alert_severity: match alert_severity {
                    AlertSeverity::Low => vigie_domain::Severity::Low,
                    AlertSeverity::Medium => vigie_domain::Severity::Medium,
                    AlertSeverity::High => vigie_domain::Severity::High,
                    AlertSeverity::Critical => vigie_domain::Severity::Critical,
                },
                sweep,
                focus_hashtag,
                claim_rows,
                ..vigie_eval::EvalOptions::default()
            };
            let detect = config.raw.detect.clone();
            let report = tokio::task::spawn_blocking(move || {
                vigie_eval::run_eval(&files, &detect, &options)
            })
            .await??;
            if let Some(path) = alerts_out {
                write_alerts(&path, &report.alerts)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_table());
            }
            Ok(())
        }
        Command::Produce {
            files,
            sample,
            brokers,
            topic,
            speed,
            properties,
        } => {
            if files.is_empty() && !sample {
                anyhow::bail!("give files to produce, or --sample for the built-in sample");
            }
            let kafka = vigie_source_kafka::KafkaConfig {
                brokers,
                properties: properties.into_iter().collect(),
                ..vigie_source_kafka::KafkaConfig::default()
            };
            commands::spawn_signal_handler(shutdown.clone());
            let options = commands::ProduceOptions {
                files,
                sample,
                kafka,
                topic: topic.clone(),
                speed,
            };
            let produced = commands::produce(options, shutdown).await?;
            println!("produced {produced} messages to {topic}");
            Ok(())
        }
        Command::CheckConfig { file } => commands::check_config(&file),
    }
}

/// Writes `vigie eval --alerts-out`: one alert per line. A failed write is an error, not
/// a truncated file passed off as complete.
fn write_alerts(path: &std::path::Path, alerts: &[vigie_eval::Alert]) -> anyhow::Result<()> {
    use std::io::Write;
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for alert in alerts {
        serde_json::to_writer(&mut out, alert)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}
