//! Test helpers that start real things: the `usher` binary (via `usher demo --json`), with deadlines
//! instead of fixed sleeps, and processes that are stopped when the helper is dropped.
//!
//! This crate depends on none of Usher's crates, so it can drive any build of the binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Polls `check` until it yields `Some`, or fails after `deadline`.
///
/// # Errors
/// When the deadline passes; the message names `what`.
pub async fn wait_until<T, F, Fut>(
    deadline: Duration,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The repository's root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// What `usher demo --json` prints.
#[derive(Debug, Clone)]
pub struct DemoInfo {
    /// Base URL of the server.
    pub base_url: String,
    /// Admin API key.
    pub admin_key: String,
    /// Tickets API key.
    pub tickets_key: String,
    /// Demo show id.
    pub show_id: String,
    /// A fresh ticket's token.
    pub ticket_token: String,
    /// Its watch link.
    pub watch_url: String,
}

/// A running `usher demo` process, killed on drop.
pub struct UsherProcess {
    child: Option<Child>,
    /// What the demo printed.
    pub info: DemoInfo,
    /// Its data directory (kept by the caller's `TempDir`).
    pub data_dir: PathBuf,
}

impl UsherProcess {
    /// Starts `bin demo --json --listen 127.0.0.1:0 --data-dir data_dir --media-dir <repo>/media` and waits
    /// (at most 30 s) for its JSON line.
    ///
    /// # Errors
    /// When the binary cannot start or prints no JSON line in time.
    pub async fn start_demo(bin: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args(["demo", "--json", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .arg("--media-dir")
            .arg(repo_root().join("media"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("usher demo printed nothing within 30 s")??
            .context("usher demo exited before printing its JSON line")?;
        // keep draining stdout so the child never blocks on a full pipe
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("demo line is not JSON: {line}"))?;
        let s = |k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .with_context(|| format!("demo JSON lacks `{k}`"))
        };
        let info = DemoInfo {
            base_url: s("base_url")?,
            admin_key: s("admin_key")?,
            tickets_key: s("tickets_key")?,
            show_id: s("show_id")?,
            ticket_token: s("ticket_token")?,
            watch_url: s("watch_url")?,
        };
        Ok(Self {
            child: Some(child),
            info,
            data_dir: data_dir.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Sends `signal` (e.g. `"TERM"`, `"KILL"`) with `kill(1)`.
    ///
    /// # Errors
    /// When `kill` fails.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("process already reaped")?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        Ok(())
    }

    /// Waits (at most `deadline`) for the process to exit and returns its exit code (`None` when killed by a
    /// signal).
    ///
    /// # Errors
    /// When it does not exit in time.
    pub async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        let child = self.child.as_mut().context("process already reaped")?;
        let status = tokio::time::timeout(deadline, child.wait())
            .await
            .context("process did not exit in time")??;
        self.child = None;
        Ok(status.code())
    }
}
