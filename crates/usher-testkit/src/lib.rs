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

/// The repository's root: two levels above the package under test, as cargo and nextest tell the test
/// process at run time (`CARGO_MANIFEST_DIR`), else above this crate as it was compiled. The run-time
/// answer matters: cargo shares a build of this crate between clones that use one target directory, so
/// the compiled-in path may name another clone, or one that is gone.
pub fn repo_root() -> PathBuf {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    Path::new(&package)
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
        send_signal(self.pid().context("process already reaped")?, signal)
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

/// A throw-away `redis-server` on a unix socket (no TCP port, no persistence), killed on drop.
pub struct RedisServer {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` and waits (at most 10 s) until it answers.
    ///
    /// # Errors
    /// When `redis-server` is not installed (the message says how to install it) or does not come up.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let sock = dir.path().join("redis.sock");
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"])
            .arg(&sock)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is required for these tests and could not be started: install it (apt-get install -y redis-server)")?;
        let server = Self { child, dir };
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
                use std::io::{Read as _, Write as _};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return Ok(server);
                }
            }
            anyhow::ensure!(
                std::time::Instant::now() < end,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The URL to reach it.
    pub fn url(&self) -> String {
        format!(
            "redis+unix://{}",
            self.dir.path().join("redis.sock").display()
        )
    }

    /// The server's process id (to read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `redis-server` on a free loopback TCP port (persistence off) and returns it with the port.
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub fn start_tcp() -> anyhow::Result<(Self, u16)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = tempfile::tempdir()?;
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--port"])
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server is required for these tests and could not be started: install it (apt-get install -y redis-server)")?;
        let server = Self { child, dir };
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read as _, Write as _};
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return Ok((server, port));
                }
            }
            anyhow::ensure!(
                std::time::Instant::now() < end,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster on loopback: `masters` `redis-server`s with `cluster-enabled yes` (persistence off),
/// joined by `redis-cli --cluster create` with the 16,384 slots spread over them (one master takes them
/// all itself); killed on drop.
pub struct RedisCluster {
    nodes: Vec<std::process::Child>,
    /// The nodes' ports on 127.0.0.1.
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the nodes, creates the cluster and waits (at most 30 s) until `CLUSTER INFO` says ok.
    ///
    /// # Errors
    /// When `redis-server` or `redis-cli` is missing, a node does not come up or the cluster is not
    /// formed in time.
    pub fn start(masters: usize) -> anyhow::Result<Self> {
        Self::start_with_replicas(masters, 0)
    }

    /// [`RedisCluster::start`] with `replicas` replicas per master (`--cluster-replicas`: `masters` ×
    /// (1 + `replicas`) nodes, at least three masters when there are replicas), and waits until every
    /// master has its replicas online.
    ///
    /// # Errors
    /// As [`RedisCluster::start`], and when the replicas are not in sync in time.
    pub fn start_with_replicas(masters: usize, replicas: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            replicas == 0 || masters >= 3,
            "redis-cli --cluster create wants three masters"
        );
        // the nodes are killed on drop, should a later one fail to start
        let mut cluster = Self {
            nodes: Vec::new(),
            ports: Vec::new(),
            _dir: tempfile::tempdir()?,
        };
        let base = cluster._dir.path().to_path_buf();
        for i in 0..masters * (1 + replicas) {
            let (child, port) = cluster_node(&base, i)?;
            cluster.nodes.push(child);
            cluster.ports.push(port);
        }
        let end = std::time::Instant::now() + Duration::from_secs(30);
        for i in 0..cluster.ports.len() {
            while !redis_cli(cluster.ports[i], &["PING"]).is_ok_and(|o| o.contains("PONG")) {
                anyhow::ensure!(
                    std::time::Instant::now() < end,
                    "redis-server {} did not answer",
                    cluster.ports[i]
                );
                // the port was free when picked, but another test may have bound it since: the node
                // exits at once; start it again on another port (the cluster is not formed yet)
                if cluster.nodes[i].try_wait()?.is_some() {
                    let (child, port) = cluster_node(&base, i)?;
                    cluster.nodes[i] = child;
                    cluster.ports[i] = port;
                    continue;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if masters == 1 {
            // `redis-cli --cluster create` wants three masters: one node takes every slot itself
            let out = redis_cli(
                cluster.ports[0],
                &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"],
            )?;
            anyhow::ensure!(out.contains("OK"), "CLUSTER ADDSLOTSRANGE answered {out:?}");
            cluster.wait_ok(end)?;
            return Ok(cluster);
        }
        let mut create = std::process::Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .context("redis-cli is required for these tests: install it (apt-get install -y redis-tools)")?;
        anyhow::ensure!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_ok(end)?;
        for port in &cluster.ports {
            let online = format!("connected_slaves:{replicas}");
            while !redis_cli(*port, &["INFO", "replication"]).is_ok_and(|o| {
                o.contains("role:slave")
                    || (o.contains(&online) && o.matches("state=online").count() == replicas)
            }) {
                anyhow::ensure!(
                    std::time::Instant::now() < end,
                    "the replicas of 127.0.0.1:{port} were not online within 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(cluster)
    }

    /// Waits until every node says `cluster_state:ok`.
    fn wait_ok(&self, end: std::time::Instant) -> anyhow::Result<()> {
        for port in &self.ports {
            while !redis_cli(*port, &["CLUSTER", "INFO"])
                .is_ok_and(|o| o.contains("cluster_state:ok"))
            {
                anyhow::ensure!(
                    std::time::Instant::now() < end,
                    "the cluster did not reach cluster_state:ok within 30 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// The nodes that are replicas now (`ROLE`), by their place in [`RedisCluster::ports`].
    ///
    /// # Errors
    /// When a node does not answer.
    pub fn replicas(&self) -> anyhow::Result<Vec<usize>> {
        let mut out = Vec::new();
        for (n, port) in self.ports.iter().enumerate() {
            let role = redis_cli(*port, &["ROLE"])?;
            anyhow::ensure!(
                !role.trim().is_empty(),
                "127.0.0.1:{port} did not answer ROLE"
            );
            if role.starts_with("slave") {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Stops (`SIGSTOP`) or resumes (`SIGCONT`) one node's process: a stopped node keeps its
    /// connections open and answers nothing, as a node that hangs does.
    ///
    /// # Errors
    /// When `kill` fails.
    pub fn freeze(&self, node: usize, frozen: bool) -> anyhow::Result<()> {
        send_signal(self.nodes[node].id(), if frozen { "STOP" } else { "CONT" })
    }

    /// Kills one node's process (`SIGKILL`): its connections close, as when a machine is lost.
    ///
    /// # Errors
    /// When `kill` fails.
    pub fn kill(&self, node: usize) -> anyhow::Result<()> {
        send_signal(self.nodes[node].id(), "KILL")
    }

    /// The node (by its place in [`RedisCluster::ports`]) that is master of `key`'s slot, and the
    /// replicas of that master (`CLUSTER KEYSLOT`, `CLUSTER NODES`).
    ///
    /// # Errors
    /// When the cluster does not answer or no node serves the slot.
    pub fn master_of(&self, key: &str) -> anyhow::Result<(usize, Vec<usize>)> {
        let slot: u16 = redis_cli(self.ports[0], &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .context("CLUSTER KEYSLOT")?;
        let rows = self.cluster_nodes(0)?;
        let master = rows
            .iter()
            .find(|r| {
                r.replica_of.is_none() && r.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
            })
            .with_context(|| format!("no master serves slot {slot}"))?;
        let node = master
            .node
            .context("the slot's master is no node of this cluster")?;
        Ok((node, replicas_in(&rows, &master.id)))
    }

    /// The replicas of the master at `node` (by their places in [`RedisCluster::ports`]).
    ///
    /// # Errors
    /// When the cluster does not answer or does not know the node.
    pub fn replicas_of(&self, node: usize) -> anyhow::Result<Vec<usize>> {
        let rows = self.cluster_nodes(node)?;
        let me = rows
            .iter()
            .find(|r| r.node == Some(node))
            .context("the node is missing from CLUSTER NODES")?;
        Ok(replicas_in(&rows, &me.id))
    }

    /// The master (by its place in [`RedisCluster::ports`]) that the replica at `node` copied, asked of
    /// another node (`CLUSTER NODES`): the replica may be down.
    ///
    /// # Errors
    /// When the cluster does not answer or does not know the node as a replica.
    pub fn master_of_replica(&self, node: usize) -> anyhow::Result<usize> {
        let asked = (0..self.ports.len())
            .find(|n| *n != node)
            .context("a cluster of one node")?;
        let rows = self.cluster_nodes(asked)?;
        let master_id = rows
            .iter()
            .find(|r| r.node == Some(node))
            .and_then(|r| r.replica_of.as_deref())
            .with_context(|| format!("127.0.0.1:{} is no replica", self.ports[node]))?;
        rows.iter()
            .find(|r| r.id == master_id)
            .and_then(|r| r.node)
            .with_context(|| format!("no master {master_id} among the nodes"))
    }

    /// `CLUSTER NODES` as node `asked` sees the cluster.
    fn cluster_nodes(&self, asked: usize) -> anyhow::Result<Vec<ClusterNode>> {
        let text = redis_cli(self.ports[asked], &["CLUSTER", "NODES"])?;
        let rows: Vec<ClusterNode> = text
            .lines()
            .filter_map(|line| {
                // <id> <ip:port@bus> <flags> <master id or -> <ping> <pong> <epoch> <link> <slots>...
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 {
                    return None;
                }
                let port: Option<u16> = f[1].split(['@', ':']).nth(1).and_then(|p| p.parse().ok());
                Some(ClusterNode {
                    id: f[0].to_owned(),
                    node: port.and_then(|port| self.ports.iter().position(|p| *p == port)),
                    replica_of: f[2].contains("slave").then(|| f[3].to_owned()),
                    slots: f[8..]
                        .iter()
                        .filter_map(|range| {
                            let (a, b) = range.split_once('-').unwrap_or((range, range));
                            Some((a.parse().ok()?, b.parse().ok()?))
                        })
                        .collect(),
                })
            })
            .collect();
        anyhow::ensure!(!rows.is_empty(), "CLUSTER NODES answered {text:?}");
        Ok(rows)
    }

    /// One node's `INFO {section}`.
    ///
    /// # Errors
    /// When the node does not answer.
    pub fn info(&self, node: usize, section: &str) -> anyhow::Result<String> {
        redis_cli(self.ports[node], &["INFO", section])
    }

    /// The nodes' process ids (to read their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(std::process::Child::id).collect()
    }

    /// A URL of one node (`redis://127.0.0.1:<port>`).
    pub fn url(&self, node: usize) -> String {
        format!("redis://127.0.0.1:{}", self.ports[node])
    }

    /// The keys one node holds (`DBSIZE`).
    ///
    /// # Errors
    /// When the node does not answer with a number.
    pub fn keys_on(&self, node: usize) -> anyhow::Result<u64> {
        let out = redis_cli(self.ports[node], &["DBSIZE"])?;
        out.trim()
            .parse()
            .with_context(|| format!("DBSIZE answered {out:?}"))
    }

    /// Moves `slots` hash slots, with their keys, from one master to another while the cluster serves
    /// (`redis-cli --cluster reshard`: the slots go through MIGRATING/IMPORTING, so clients meet ASK and
    /// then MOVED), and waits until every node agrees again.
    ///
    /// # Errors
    /// When `redis-cli` fails or the cluster does not settle within 60 s.
    pub fn move_slots(&self, from: usize, to: usize, slots: u32) -> anyhow::Result<()> {
        let id = |node: usize| -> anyhow::Result<String> {
            Ok(redis_cli(self.ports[node], &["CLUSTER", "MYID"])?
                .trim()
                .to_owned())
        };
        let out = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("reshard")
            .arg(format!("127.0.0.1:{}", self.ports[to]))
            .args(["--cluster-from", &id(from)?, "--cluster-to", &id(to)?])
            .args(["--cluster-slots", &slots.to_string(), "--cluster-yes"])
            // one key per MIGRATE, so that a slot stays half-moved for as long as it can
            .args(["--cluster-pipeline", "1"])
            .output()
            .context("redis-cli --cluster reshard")?;
        anyhow::ensure!(
            out.status.success(),
            "redis-cli --cluster reshard failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let end = std::time::Instant::now() + Duration::from_secs(60);
        let check = format!("127.0.0.1:{}", self.ports[0]);
        loop {
            let out = std::process::Command::new("redis-cli")
                .args(["--cluster", "check", &check])
                .output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success()
                && text.contains("All 16384 slots covered")
                && !text.contains("[WARNING]")
            {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < end,
                "the cluster did not settle after the reshard: {text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Sends `signal` (`"TERM"`, `"STOP"`, …) to process `pid` with `kill(1)`.
fn send_signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
    Ok(())
}

/// One row of `CLUSTER NODES`.
struct ClusterNode {
    id: String,
    /// Its place in [`RedisCluster::ports`] (none for a node of another cluster).
    node: Option<usize>,
    /// A replica's master id.
    replica_of: Option<String>,
    /// A master's slot ranges.
    slots: Vec<(u16, u16)>,
}

/// The places of the replicas of master `id` among `rows`.
fn replicas_in(rows: &[ClusterNode], id: &str) -> Vec<usize> {
    rows.iter()
        .filter(|r| r.replica_of.as_deref() == Some(id))
        .filter_map(|r| r.node)
        .collect()
}

/// Starts node `i` of a cluster in a directory of its own under `base`, on a port picked free with its
/// cluster bus port (the port + 10,000) free too.
fn cluster_node(base: &std::path::Path, i: usize) -> anyhow::Result<(std::process::Child, u16)> {
    let port = loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if p < 55_000 && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            break p;
        }
    };
    let node_dir = base.join(format!("node-{i}"));
    std::fs::create_dir_all(&node_dir)?;
    // a node started again after losing its port starts afresh, not from the first one's config
    let _ = std::fs::remove_file(node_dir.join("nodes.conf"));
    let child = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(&node_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("redis-server is required for these tests and could not be started: install it (apt-get install -y redis-server)")?;
    Ok((child, port))
}

fn redis_cli(port: u16, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(args)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// A running `usher serve` process, killed on drop.
pub struct ServeProcess {
    child: Option<Child>,
    /// Base URL (`http://<bound address>`).
    pub base_url: String,
}

impl ServeProcess {
    /// Starts `bin serve --config config` (the config must log as JSON and listen on a port, 0 allowed)
    /// and waits (at most 30 s) for its "usher serving" log line to learn the bound address.
    ///
    /// # Errors
    /// When it cannot start or does not serve in time (its last log lines are in the message).
    pub async fn start(bin: &Path, config: &Path) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--config").arg(config);
        Self::spawn(cmd, bin).await
    }

    /// Starts `bin serve --config config` as [`ServeProcess::start`] does, with `env` added to its
    /// environment (settings and credentials a test must not put in the process's own environment).
    ///
    /// # Errors
    /// As [`ServeProcess::start`].
    pub async fn start_with_env(
        bin: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.arg("serve").arg("--config").arg(config);
        cmd.envs(env.iter().copied());
        Self::spawn(cmd, bin).await
    }

    /// Starts `usher serve` as [`ServeProcess::start`] does, with its open-files limit (soft and hard)
    /// lowered to `open_files` first (by `sh`'s `ulimit -n`).
    ///
    /// # Errors
    /// As [`ServeProcess::start`].
    pub async fn start_with_open_files(
        bin: &Path,
        config: &Path,
        open_files: u64,
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -n {open_files} && exec \"$0\" serve --config \"$1\""
            ))
            .arg(bin)
            .arg(config);
        Self::spawn(cmd, bin).await
    }

    async fn spawn(mut cmd: Command, bin: &Path) -> anyhow::Result<Self> {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut seen = Vec::new();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "usher serving"
                    && let Some(a) = v["listen"].as_str()
                {
                    return Some(a.to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await;
        let addr = match addr {
            Ok(Some(a)) => a,
            _ => bail!("usher serve did not start; it said:\n{}", seen.join("\n")),
        };
        // keep draining stderr; USHER_TEST_LOG=1 shows it (the request logs of a failing test)
        let show = std::env::var_os("USHER_TEST_LOG").is_some();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if show {
                    eprintln!("[usher] {line}");
                }
            }
        });
        Ok(Self {
            child: Some(child),
            base_url: format!("http://{addr}"),
        })
    }

    /// The process id (for `/proc/<pid>/status` and signals); `None` once killed.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Sends SIGKILL and reaps the process.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }
}

/// A TCP proxy in front of a server that a test can cut (close every connection and refuse new ones)
/// and restore, to simulate the loss of a store.
pub struct ChaosProxy {
    /// The proxy's address.
    pub addr: std::net::SocketAddr,
    cut: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(upstream: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *rx.borrow() {
                    drop(inbound);
                    continue;
                }
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            cut: std::sync::Arc::new(tx),
            task,
        })
    }

    /// Closes every connection and refuses new ones until [`ChaosProxy::restore`].
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        let _ = self.cut.send(false);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
