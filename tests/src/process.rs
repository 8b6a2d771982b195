//! The `vigie` binary under test, run as a child process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::http_get;

/// Returns the `vigie` binary next to the running test's executable
/// (`target/<profile>/deps/TEST-HASH` → `target/<profile>/vigie`), or the one
/// `TEST_VIGIE_BINARY` names (to check that a test fails on an older build).
pub fn vigie_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("TEST_VIGIE_BINARY") {
        return PathBuf::from(binary);
    }
    let exe = std::env::current_exe().expect("the test knows its path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("target layout")
        .join("vigie");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p vigie-daemon` (or `cargo test --workspace`)",
        binary.display()
    );
    binary
}

/// A `vigie` child process whose standard output and error go to a log file (appended,
/// so a restarted daemon keeps one log); killed (SIGKILL) on drop.
pub struct VigieProcess {
    child: Option<Child>,
    /// Its HTTP port (from the configuration it was given).
    pub http_port: u16,
    /// Its log file.
    pub log_path: PathBuf,
}

impl VigieProcess {
    /// Starts `vigie ARGS…` with `RUST_LOG`-style level `info`, logging to `log_path`.
    pub fn spawn(args: &[&str], http_port: u16, log_path: &Path) -> anyhow::Result<VigieProcess> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("failed to open {}", log_path.display()))?;
        let child = Command::new(vigie_binary())
            .args(args)
            .env("VIGIE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start vigie")?;
        Ok(VigieProcess {
            child: Some(child),
            http_port,
            log_path: log_path.to_owned(),
        })
    }

    /// Starts `vigie run --config CONFIG`.
    pub fn run(config: &Path, http_port: u16, log_path: &Path) -> anyhow::Result<VigieProcess> {
        let config = config.to_str().context("config path is not UTF-8")?;
        VigieProcess::spawn(&["run", "--config", config], http_port, log_path)
    }

    /// Returns the log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_else(|err| format!("(no log: {err})"))
    }

    /// Its process id while it runs (for /proc readings such as peak memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `GET path` on its HTTP port.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.http_port, path)
    }

    /// `GET path` as JSON, when it answers 200 with JSON.
    pub fn get_json(&self, path: &str) -> Option<serde_json::Value> {
        match self.get(path)? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("vigie exited with {status}; log:\n{}", self.log());
            }
        }
        Ok(())
    }

    /// Waits until `probe` returns `Some`, failing (with the log) after `timeout` or if the
    /// process exits; polls every 100 ms.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&VigieProcess) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = probe(self) {
                return Ok(value);
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{what}: not seen within {timeout:?}; vigie log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the process to exit by itself (e.g. `vigie replay`) and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "vigie did not exit within {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for VigieProcess {
    fn drop(&mut self) {
        self.kill_hard();
    }
}

/// Kills and reaps a child process when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
