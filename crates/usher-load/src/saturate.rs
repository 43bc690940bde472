//! Closed-loop throughput runs: C workers, each on its own connection, send the next request as soon as
//! the last one is answered, for a fixed time after a warm-up. The same loop measures Usher (heartbeat,
//! admit, origin segments) and the machine's ceilings (any URL: nginx `return 200`, nginx `sendfile`), so
//! the ratios compare like with like.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::api::{self, Outcome, Session};
use crate::client::{Lanes, Target};
use crate::setup::{self, Server};
use crate::stats::{Op, OpReport, Recorder};
use crate::system::{PhaseClock, PhaseUsage, ProcWatch};

/// What the workers send.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// `GET` of these URLs in turn (same host).
    Get(Vec<String>),
    /// Heartbeats, each worker on its own session.
    Heartbeat,
    /// Admits of fresh devices on a pool of tickets (newest wins: each admit takes the seat).
    Admit {
        /// Tickets in the pool.
        tickets: usize,
    },
    /// Origin segments (`/o/{grant}/…`), each worker with its own session, cycling through the first
    /// variant's segments.
    Segment,
}

/// A closed-loop run.
#[derive(Debug, Clone, Serialize)]
pub struct SaturateConfig {
    /// What to send.
    pub load: Load,
    /// Workers (= connections).
    pub concurrency: usize,
    /// Seconds measured.
    pub duration_s: f64,
    /// Seconds before measuring.
    pub warmup_s: f64,
}

/// What a closed-loop run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SaturateReport {
    /// The run's settings.
    pub config: SaturateConfig,
    /// Where.
    pub base_url: String,
    /// The operation measured.
    pub ops: Vec<OpReport>,
    /// Server CPU over the measured window, with `--server-pid`.
    pub server: Option<PhaseUsage>,
    /// The tool's own CPU over the measured window.
    pub tool: Option<PhaseUsage>,
    /// Errors.
    pub errors: u64,
}

impl SaturateReport {
    /// Answered requests per second of the measured operation.
    pub fn rate(&self) -> f64 {
        self.ops.first().map_or(0.0, |o| o.rate_per_s)
    }
}

enum Work {
    Get(Vec<String>),
    Heartbeat(Vec<Session>),
    Admit(Vec<String>),
    Segment(Vec<(String, Vec<String>)>),
}

/// Runs a closed loop. `server` is needed for Usher loads (not for `Get`).
///
/// # Errors
/// When setup fails.
pub async fn run(
    server: Option<&Server>,
    cfg: SaturateConfig,
    server_pid: Option<u32>,
) -> anyhow::Result<SaturateReport> {
    let c = cfg.concurrency.max(1);
    setup::connection_budget(c + 1, true)?;
    let rec = Arc::new(Recorder::new());
    let (lanes, work, op) = match &cfg.load {
        Load::Get(urls) => {
            let first = urls.first().context("give at least one --url")?;
            let target = Target::resolve(first).await?;
            let mut paths = Vec::new();
            for u in urls {
                let uri: hyper::Uri = u.parse().with_context(|| format!("`{u}` is not a URL"))?;
                paths.push(
                    uri.path_and_query()
                        .map_or("/".to_owned(), |p| p.as_str().to_owned()),
                );
            }
            let lanes = Arc::new(Lanes::new(target, c, Duration::from_secs(30)));
            (lanes, Work::Get(paths), Op::Get)
        }
        load => {
            let server = server.context("this load needs --base-url and keys")?;
            let admin = setup::lanes(server, 1).await?;
            let show = setup::prepare_show(&admin, server, 1).await?;
            let n = match load {
                Load::Admit { tickets } => (*tickets).max(c),
                _ => c,
            };
            let (tokens, _) = setup::prepare_tickets(&admin, &rec, server, &show, n).await?;
            let lanes = setup::lanes(server, c).await?;
            let work = match load {
                Load::Admit { .. } => Work::Admit(tokens.to_vec()),
                Load::Heartbeat => Work::Heartbeat(admit_all(&lanes, &tokens[..c]).await?),
                _ => {
                    let sessions = admit_all(&lanes, &tokens[..c]).await?;
                    Work::Segment(segment_paths(&lanes, sessions).await?)
                }
            };
            let op = match load {
                Load::Admit { .. } => Op::Admit,
                Load::Heartbeat => Op::Heartbeat,
                _ => Op::Segment,
            };
            (lanes, work, op)
        }
    };
    rec.reset();
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..c {
        let (lanes, work, rec, stop, counter) = (
            lanes.clone(),
            work.clone(),
            rec.clone(),
            stop.clone(),
            counter.clone(),
        );
        workers.spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                step(&lanes, &work, &rec, w, i, &counter).await;
                i += c;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(cfg.warmup_s)).await;
    let server_watch = server_pid.map(ProcWatch::new).transpose()?;
    let mut server_clock = server_watch.map(PhaseClock::start).transpose()?;
    let mut tool_clock = PhaseClock::start(ProcWatch::new(std::process::id())?).ok();
    rec.reset();
    let window_start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(cfg.duration_s)).await;
    let window = window_start.elapsed();
    let ops = rec.report(Some(window));
    let server_usage = server_clock.as_mut().and_then(|c| c.mark("measured"));
    let tool_usage = tool_clock.as_mut().and_then(|c| c.mark("measured"));
    stop.store(true, Ordering::Relaxed);
    while workers.join_next().await.is_some() {}
    let ops: Vec<OpReport> = ops.into_iter().filter(|o| o.op == op).collect();
    Ok(SaturateReport {
        base_url: lanes.target().base_url.clone(),
        errors: ops.iter().map(|o| o.errors).sum(),
        ops,
        server: server_usage,
        tool: tool_usage,
        config: cfg,
    })
}

async fn step(lanes: &Lanes, work: &Work, rec: &Recorder, w: usize, i: usize, n: &AtomicUsize) {
    match work {
        Work::Get(paths) => {
            let out = api::fetch(lanes, w, &paths[i % paths.len()]).await;
            api::record(rec, Op::Get, out, |b| b.len() as u64);
        }
        Work::Heartbeat(sessions) => {
            let out = api::heartbeat(lanes, w, &sessions[w].id).await;
            api::record(rec, Op::Heartbeat, out, |_| 1);
        }
        Work::Admit(tokens) => {
            let t = &tokens[n.fetch_add(1, Ordering::Relaxed) % tokens.len()];
            let out = api::admit(lanes, w, t, &api::make_device()).await;
            api::record(rec, Op::Admit, out, |_| 1);
        }
        Work::Segment(paths) => {
            let (base, segs) = &paths[w];
            let path = format!("{base}/{}", segs[i / paths.len() % segs.len()]);
            let out = api::fetch(lanes, w, &path).await;
            api::record(rec, Op::Segment, out, |b| b.len() as u64);
        }
    }
}

/// Admits one device per token, each on its own lane.
async fn admit_all(lanes: &Lanes, tokens: &[String]) -> anyhow::Result<Vec<Session>> {
    let admits = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| async move { (i, api::admit(lanes, i, t, &api::make_device()).await) });
    let mut sessions = Vec::with_capacity(tokens.len());
    for (i, out) in futures_util::future::join_all(admits).await {
        match out {
            Outcome::Ok(s, _) => sessions.push(s),
            Outcome::Http(r) => anyhow::bail!(
                "admit {i} before the run: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
            Outcome::Failed(f) => anyhow::bail!("admit {i} before the run: {f}"),
        }
    }
    Ok(sessions)
}

/// For each session: the origin path of its first variant's folder (with its grant) and the segments.
async fn segment_paths(
    lanes: &Lanes,
    sessions: Vec<Session>,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::with_capacity(sessions.len());
    for (i, s) in sessions.iter().enumerate() {
        let get = |path: String| async move {
            match api::fetch(lanes, i, &path).await {
                Outcome::Ok(b, _) => Ok(String::from_utf8_lossy(&b).into_owned()),
                Outcome::Http(r) => anyhow::bail!("GET {path}: {}", r.status),
                Outcome::Failed(f) => anyhow::bail!("GET {path}: {f}"),
            }
        };
        let master = get(s.playlist_url.clone()).await?;
        let variant = api::playlist_uris(&master)
            .into_iter()
            .next()
            .context("master playlist without variants")?;
        let media = get(variant.clone()).await?;
        let base = variant
            .rsplit_once('/')
            .map(|(d, _)| d.to_owned())
            .context("odd variant URI")?;
        let segs = api::playlist_uris(&media);
        anyhow::ensure!(!segs.is_empty(), "media playlist without segments");
        out.push((base, segs));
    }
    Ok(out)
}
