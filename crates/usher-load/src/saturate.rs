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
    /// Heartbeats, each worker on its own session, with the session's secret moving at each one.
    Heartbeat,
    /// Admits of fresh devices on a pool of tickets (newest wins: each admit takes the seat).
    Admit {
        /// Tickets in the pool.
        tickets: usize,
    },
    /// Origin segments (`/o/{grant}/…`), each worker with its own session, cycling through the first
    /// variant's segments.
    Segment,
    /// Content keys (`GET /keys/{id}`), each worker with its own session's headers, the first key its
    /// first variant names (the show must be `aes-128` on a packaged folder).
    Key,
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
    /// Errors: error answers of the measured operation, and workers that panicked.
    pub errors: u64,
}

impl SaturateReport {
    /// Answered requests per second of the measured operation.
    pub fn rate(&self) -> f64 {
        self.ops.first().map_or(0.0, |o| o.rate_per_s)
    }
}

/// What one worker sends, with what it keeps from one request to the next.
enum Job {
    /// `GET` of these paths, in turn.
    Get(Arc<Vec<String>>),
    /// Heartbeats of the worker's own session, whose secret each answer moves.
    Heartbeat(Session),
    /// Admits of fresh devices on the pool's tickets, taken in turn by all workers.
    Admit(Arc<Vec<String>>, Arc<AtomicUsize>),
    /// A content key, with the worker's own session.
    Key {
        /// `/keys/{id}`.
        path: String,
        /// The session whose headers it sends.
        session: Session,
    },
    /// The segments of the worker's own session, under its grant.
    Segment {
        /// `/o/{grant}/{folder}`.
        base: String,
        /// The media playlist's segments.
        segments: Vec<String>,
    },
}

impl Job {
    /// Sends the worker's `n`-th request on lane `w` (`i = w + n × workers`).
    async fn step(&mut self, lanes: &Lanes, rec: &Recorder, w: usize, i: usize, n: usize) {
        match self {
            Job::Get(paths) => {
                let out = api::fetch(lanes, w, &paths[i % paths.len()]).await;
                api::record(rec, Op::Get, out, |b| b.len() as u64);
            }
            Job::Heartbeat(session) => {
                let out = api::heartbeat(lanes, w, session).await;
                if let Some(renewal) = api::record(rec, Op::Heartbeat, out, |_| 1) {
                    session.adopt(renewal);
                }
            }
            Job::Admit(tokens, next) => {
                let t = &tokens[next.fetch_add(1, Ordering::Relaxed) % tokens.len()];
                let out = api::admit(lanes, w, t, &api::make_device(), None).await;
                api::record(rec, Op::Admit, out, |_| 1);
            }
            Job::Key { path, session } => {
                let out = api::key(lanes, w, path, session).await;
                api::record(rec, Op::Key, out, |b| b.len() as u64);
            }
            Job::Segment { base, segments } => {
                let path = format!("{base}/{}", segments[n % segments.len()]);
                let out = api::fetch(lanes, w, &path).await;
                api::record(rec, Op::Segment, out, |b| b.len() as u64);
            }
        }
    }
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
    let (lanes, jobs, op) = match &cfg.load {
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
            let paths = Arc::new(paths);
            let jobs = (0..c).map(|_| Job::Get(paths.clone())).collect();
            (lanes, jobs, Op::Get)
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
            let jobs: Vec<Job> = match load {
                Load::Admit { .. } => {
                    let next = Arc::new(AtomicUsize::new(0));
                    (0..c)
                        .map(|_| Job::Admit(tokens.clone(), next.clone()))
                        .collect()
                }
                Load::Heartbeat => admit_all(&lanes, &tokens[..c])
                    .await?
                    .into_iter()
                    .map(Job::Heartbeat)
                    .collect(),
                Load::Key => {
                    let sessions = admit_all(&lanes, &tokens[..c]).await?;
                    let paths = media_playlists(&lanes, &sessions).await?;
                    let mut jobs = Vec::with_capacity(c);
                    for (session, (_, media)) in sessions.into_iter().zip(paths) {
                        let path = api::first_key_path(&media).context(
                            "the media playlist names no content key: use --stream-path of a packaged folder (demo-aes) and --encryption aes-128",
                        )?;
                        jobs.push(Job::Key { path, session });
                    }
                    jobs
                }
                _ => {
                    let sessions = admit_all(&lanes, &tokens[..c]).await?;
                    segment_paths(&lanes, sessions)
                        .await?
                        .into_iter()
                        .map(|(base, segments)| Job::Segment { base, segments })
                        .collect()
                }
            };
            let op = match load {
                Load::Admit { .. } => Op::Admit,
                Load::Heartbeat => Op::Heartbeat,
                Load::Key => Op::Key,
                _ => Op::Segment,
            };
            (lanes, jobs, op)
        }
    };
    rec.reset();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for (w, mut job) in jobs.into_iter().enumerate() {
        let (lanes, rec, stop) = (lanes.clone(), rec.clone(), stop.clone());
        workers.spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                job.step(&lanes, &rec, w, w + n * c, n).await;
                n += 1;
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
    // a worker that panicked made requests nobody counted: it is an error of the run
    let mut failed_workers = 0u64;
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            eprintln!("usher-load: a worker failed: {e}");
            failed_workers += 1;
        }
    }
    let ops: Vec<OpReport> = ops.into_iter().filter(|o| o.op == op).collect();
    Ok(SaturateReport {
        base_url: lanes.target().base_url.clone(),
        errors: ops.iter().map(|o| o.errors).sum::<u64>() + failed_workers,
        ops,
        server: server_usage,
        tool: tool_usage,
        config: cfg,
    })
}

/// Admits one device per token, each on its own lane.
async fn admit_all(lanes: &Lanes, tokens: &[String]) -> anyhow::Result<Vec<Session>> {
    let admits = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| async move { (i, api::admit(lanes, i, t, &api::make_device(), None).await) });
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

/// For each session: its first variant's origin URI (with its grant) and that media playlist's text.
async fn media_playlists(
    lanes: &Lanes,
    sessions: &[Session],
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(sessions.len());
    for (i, s) in sessions.iter().enumerate() {
        let text = |path: &str, out: Outcome<bytes::Bytes>| match out {
            Outcome::Ok(b, _) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Outcome::Http(r) => anyhow::bail!("GET {path}: {}", r.status),
            Outcome::Failed(f) => anyhow::bail!("GET {path}: {f}"),
        };
        let master = text(s.master_path(), api::master(lanes, i, s).await)?;
        let variant = api::playlist_uris(&master)
            .into_iter()
            .next()
            .context("master playlist without variants")?;
        let media = text(&variant, api::fetch(lanes, i, &variant).await)?;
        out.push((variant, media));
    }
    Ok(out)
}

/// For each session: the origin path of its first variant's folder (with its grant) and the segments.
async fn segment_paths(
    lanes: &Lanes,
    sessions: Vec<Session>,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::with_capacity(sessions.len());
    for (variant, media) in media_playlists(lanes, &sessions).await? {
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
