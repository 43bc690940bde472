//! Counts the commands Redis receives while a piece of work runs, through `redis-cli MONITOR` (installed
//! with `redis-server`). Shared by the Redis tests and the `redis_round_trips` example.
//!
//! Work is framed by `ECHO` markers sent on a connection of its own, so the count is exact whatever else
//! the monitor has seen before, and a count ends only once its closing marker has come through.
//! Connections' upkeep (`PING`, `HELLO`, `CLIENT`), which comes at any time, is not counted.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

/// The commands seen while some work ran.
#[derive(Debug, Default)]
pub(crate) struct Commands {
    /// Commands sent by clients, by name: each one is a round trip unless pipelined with others.
    pub(crate) top: BTreeMap<String, usize>,
    /// Commands run by Lua scripts (part of the script's one round trip).
    pub(crate) in_scripts: usize,
    /// The same, by name.
    pub(crate) scripted: BTreeMap<String, usize>,
}

impl Commands {
    /// How many commands clients sent.
    pub(crate) fn top_level(&self) -> usize {
        self.top.values().sum()
    }
}

/// A `redis-cli MONITOR` of one Redis, killed on drop.
pub(crate) struct Monitor {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    marker: MultiplexedConnection,
    counts: u32,
}

impl Monitor {
    /// Attaches to the Redis at `url` (`redis+unix://…` or `redis://host:port`) and returns once the
    /// monitor sees commands (at most 10 s).
    pub(crate) async fn attach(url: &str) -> anyhow::Result<Self> {
        let mut cli = Command::new("redis-cli");
        match url.strip_prefix("redis+unix://") {
            Some(socket) => cli.args(["-s", socket]),
            None => cli.args(["-u", url]),
        };
        let mut child = cli
            .arg("MONITOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-cli (installed with redis-server) is needed to count commands")?;
        let out = child.stdout.take().context("monitor output")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let marker = redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await?;
        let mut monitor = Self {
            child,
            lines,
            marker,
            counts: 0,
        };
        // MONITOR sees only what is sent after it attached: probe until a probe comes through
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            monitor.echo("usher-monitor-ready").await?;
            let seen = tokio::time::timeout(Duration::from_millis(50), async {
                while let Some(line) = monitor.lines.recv().await {
                    if line.contains("\"usher-monitor-ready\"") {
                        return true;
                    }
                }
                false
            })
            .await;
            if seen == Ok(true) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "MONITOR did not attach within 10 s"
            );
        }
        // forget the probes still on their way
        monitor.count(async {}).await?;
        Ok(monitor)
    }

    async fn echo(&mut self, text: &str) -> anyhow::Result<()> {
        let _: String = redis::cmd("ECHO")
            .arg(text)
            .query_async(&mut self.marker)
            .await?;
        Ok(())
    }

    /// Runs `work` and returns its output with the commands Redis received meanwhile (from every client
    /// but the monitor's marker connection).
    pub(crate) async fn count<T>(
        &mut self,
        work: impl Future<Output = T>,
    ) -> anyhow::Result<(T, Commands)> {
        self.counts += 1;
        let start = format!("usher-monitor-start-{}", self.counts);
        let end = format!("usher-monitor-end-{}", self.counts);
        self.echo(&start).await?;
        let out = work.await;
        self.echo(&end).await?;
        let mut commands = Commands::default();
        let mut inside = false;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.recv())
                .await
                .context("MONITOR fell silent")?
                .context("MONITOR ended")?;
            if line.contains(&format!("\"{end}\"")) {
                break;
            }
            if line.contains(&format!("\"{start}\"")) {
                inside = true;
                continue;
            }
            // `1700000000.123456 [0 unix:/…/redis.sock] "EVALSHA" "…"`; `[0 lua]` inside a script
            let Some(name) = line.split('"').nth(1) else {
                continue;
            };
            // a connection's own upkeep, at any time: the tracked connection's liveness `PING`s
            // (`redis/tracked.rs`), a connection's `HELLO` and `CLIENT SETINFO`/`TRACKING`
            if !inside
                || matches!(
                    name.to_ascii_uppercase().as_str(),
                    "PING" | "HELLO" | "CLIENT"
                )
            {
                continue;
            }
            if line.contains(" lua] ") {
                commands.in_scripts += 1;
                *commands
                    .scripted
                    .entry(name.to_ascii_uppercase())
                    .or_default() += 1;
            } else {
                *commands.top.entry(name.to_ascii_uppercase()).or_default() += 1;
            }
        }
        Ok((out, commands))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
