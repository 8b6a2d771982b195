//! Runs the labelled evaluation from the command line, until `vigie eval` exists:
//!
//! ```sh
//! cargo run --release -p vigie-eval --example eval -- [--json] [--sweep] [--focus TAG] \
//!     [--config FILE.json] FILE...
//! ```

use std::path::PathBuf;

use vigie_detect::DetectorConfig;
use vigie_eval::{run_eval, EvalOptions};

fn main() {
    let mut files = Vec::new();
    let mut options = EvalOptions::default();
    let mut json = false;
    let mut config = DetectorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--sweep" => options.sweep = true,
            "--focus" => options.focus_hashtag = args.next(),
            "--config" => {
                let path = args.next().expect("--config needs a file");
                let text = std::fs::read_to_string(&path).expect("readable config");
                config = serde_json::from_str(&text).expect("a valid detector config");
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    match run_eval(&files, &config, &options) {
        Ok(report) if json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serializable")
        ),
        Ok(report) => print!("{}", report.to_table()),
        Err(err) => {
            eprintln!("eval failed: {err}");
            std::process::exit(1);
        }
    }
}
