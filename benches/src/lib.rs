//! Vigie's benchmarks. `benches/stages.rs` holds the criterion micro-benchmarks; the
//! `e2e` binary (`src/bin/e2e.rs`) replays a whole file through the real pipeline beside
//! a plain-Tantivy baseline and prints posts/s, latency percentiles and peak RSS; the
//! `kafka` binary (`src/bin/kafka.rs`) measures the Kafka path against a real broker.
//! What both binaries read of files and processes is here.

use std::io::BufRead;
use std::path::Path;

/// Opens a JSONL file, gzip-compressed when its name ends in `.gz`.
pub fn open_jsonl(file: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let input = std::fs::File::open(file)?;
    Ok(if file.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            input,
        )))
    } else {
        Box::new(std::io::BufReader::new(input))
    })
}

/// A process to read from /proc (Linux): this one, or another by pid.
#[derive(Debug, Clone, Copy)]
pub enum Process {
    /// The benchmark itself.
    This,
    /// A child, e.g. the `vigie` daemon under test.
    Pid(u32),
}

impl Process {
    fn proc_file(self, name: &str) -> Option<String> {
        let path = match self {
            Process::This => format!("/proc/self/{name}"),
            Process::Pid(pid) => format!("/proc/{pid}/{name}"),
        };
        std::fs::read_to_string(path).ok()
    }

    /// Peak resident set size, in MiB.
    pub fn peak_rss_mib(self) -> Option<f64> {
        let status = self.proc_file("status")?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// User plus system CPU seconds so far.
    pub fn cpu_secs(self) -> Option<f64> {
        let stat = self.proc_file("stat")?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
        let ticks = [11, 12]
            .iter()
            .map(|&n| fields.get(n)?.parse::<f64>().ok())
            .sum::<Option<f64>>()?;
        Some(ticks / 100.0) // USER_HZ is 100 on Linux
    }
}
