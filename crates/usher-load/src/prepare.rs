//! `usher-load prepare`: tickets and live sessions made ahead of a run of another load tool (wrk, in
//! `scripts/bench.sh`), written as plain files its scripts read, one line per session.
//!
//! A first run creates the show, registers `sessions` fresh tickets and admits each on a fresh device; a
//! run with `again` re-admits the tickets of the folder, each on a fresh device again, so each ticket's
//! session of the run before is superseded (the number of live sessions stays `sessions`), and every
//! session, secret and grant is new. `scripts/bench.sh` does that before each round: a heartbeat round
//! moves the secrets the files hold, and an admit round takes seats over.
//!
//! Files written in the folder:
//!
//! - `show_id`: the show.
//! - `tokens.txt`: the tickets' tokens.
//! - `sessions.txt`: `session_id secret grant` per session (the secret for `X-Usher-Session-Secret`, the
//!   origin grant the admit answered).
//! - `playlists.txt`: the path of each session's first media playlist on Usher's origin, as its master
//!   playlist names it (`/o/{grant}/demo/360p/index.m3u8`).
//! - `segments.txt`: the path of one segment under each session's grant: `segment` (relative to the
//!   show's stream folder) when given, else the first segment of that media playlist.
//! - `playlist.m3u8`, `segment.bin`: the media playlist and the segment as Usher answered the first
//!   session (a ceiling server serves the same bytes as static files); `master.m3u8`, its master
//!   playlist (`/hls/{session}/master.m3u8`, every URI signed for the session).
//! - `prepare.json`: what the run did ([`PrepareReport`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::api::{self, Outcome, Registered, Session};
use crate::client::Lanes;
use crate::setup::{self, Server};
use crate::stats::{Op, OpReport, Recorder};

/// What to prepare.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareConfig {
    /// Tickets, and live sessions (one per ticket).
    pub sessions: usize,
    /// The folder of the files.
    pub out: PathBuf,
    /// Re-admit the folder's tickets instead of creating a show and tickets.
    pub again: bool,
    /// Connections to admit over.
    pub connections: usize,
    /// The segment of `segments.txt`, relative to the show's stream folder (`None`: the first segment of
    /// the first media playlist).
    pub segment: Option<String>,
}

/// What a prepare run did.
#[derive(Debug, Clone, Serialize)]
pub struct PrepareReport {
    /// The run's settings.
    pub config: PrepareConfig,
    /// The show.
    pub show_id: String,
    /// Tickets registered by this run (none when `again`).
    pub registered: Option<Registered>,
    /// Sessions admitted and written.
    pub sessions: usize,
    /// Heartbeat interval the server asks for, seconds.
    pub heartbeat_s: u32,
    /// Seconds registering took.
    pub register_s: f64,
    /// Seconds admitting took.
    pub admit_s: f64,
    /// The media playlist's path under a grant (`demo/360p/index.m3u8`).
    pub playlist: String,
    /// Its size as Usher answered it, bytes.
    pub playlist_bytes: usize,
    /// The size of the first session's master playlist, bytes.
    pub master_bytes: usize,
    /// The segment's path under a grant.
    pub segment: String,
    /// Its size, bytes.
    pub segment_bytes: usize,
    /// Registration and admits, timed.
    pub ops: Vec<OpReport>,
}

/// Prepares the sessions and writes the files.
///
/// # Errors
/// When the server refuses anything (every admit must succeed), or a file cannot be read or written.
pub async fn run(server: &Server, cfg: PrepareConfig) -> anyhow::Result<PrepareReport> {
    anyhow::ensure!(cfg.sessions > 0, "--sessions must be at least 1");
    let c = cfg.connections.clamp(1, cfg.sessions);
    setup::connection_budget(c + 1, true)?;
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let rec = Recorder::new();
    let lanes = setup::lanes(server, c).await?;

    let started = Instant::now();
    let (show_id, tokens, registered) = if cfg.again {
        let show_id = read_text(&cfg.out.join("show_id"))?.trim().to_owned();
        let tokens: Vec<String> = read_text(&cfg.out.join("tokens.txt"))?
            .lines()
            .map(str::to_owned)
            .collect();
        anyhow::ensure!(
            tokens.len() == cfg.sessions,
            "{} holds {} tokens, not --sessions {}: prepare it anew without --again",
            cfg.out.display(),
            tokens.len(),
            cfg.sessions
        );
        (show_id, tokens, None)
    } else {
        let show_id = setup::prepare_show(&lanes, server, 1).await?;
        let (tokens, registered) =
            setup::prepare_tickets(&lanes, &rec, server, &show_id, cfg.sessions).await?;
        write_lines(&cfg.out.join("show_id"), [show_id.as_str()])?;
        write_lines(&cfg.out.join("tokens.txt"), tokens.iter())?;
        (show_id, tokens.to_vec(), Some(registered))
    };
    let register_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let sessions = admit_all(&lanes, &rec, Arc::new(tokens)).await?;
    let admit_s = started.elapsed().as_secs_f64();

    // the first session shows where its media lie under its grant: its master playlist's first variant
    let first = &sessions[0];
    let grant = first
        .grant
        .as_deref()
        .context("the admit answered no origin grant")?;
    let master = body(first.master_path(), api::master(&lanes, 0, first).await)?;
    let variant = api::playlist_uris(&String::from_utf8_lossy(&master))
        .into_iter()
        .next()
        .context("the master playlist names no variant")?;
    // the master signs its own grant (a fresh expiry): what follows it is the path every session's
    // grant covers
    let playlist = under_grant(&variant)
        .with_context(|| format!("the first variant `{variant}` is not on Usher's origin (is the origin the show's first CDN?)"))?
        .to_owned();
    let media_path = format!("/o/{grant}/{playlist}");
    let media = body(&media_path, api::fetch(&lanes, 0, &media_path).await)?;
    let segment = match &cfg.segment {
        Some(s) => format!(
            "{}/{}",
            server.stream_path.trim_matches('/'),
            s.trim_start_matches('/')
        ),
        None => {
            let first_segment = api::playlist_uris(&String::from_utf8_lossy(&media))
                .into_iter()
                .next()
                .context("the media playlist names no segment")?;
            join_relative(&playlist, &first_segment)
        }
    };
    let seg_path = format!("/o/{grant}/{segment}");
    let seg_body = body(&seg_path, api::fetch(&lanes, 0, &seg_path).await)?;

    std::fs::write(cfg.out.join("master.m3u8"), &master)?;
    std::fs::write(cfg.out.join("playlist.m3u8"), &media)?;
    std::fs::write(cfg.out.join("segment.bin"), &seg_body)?;
    let mut lines = Vec::with_capacity(sessions.len());
    let (mut playlists, mut segments) = (Vec::new(), Vec::new());
    for s in &sessions {
        let grant = s
            .grant
            .as_deref()
            .context("an admit answered no origin grant")?;
        let secret = s
            .secret
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .context("an admit answered no session secret")?;
        lines.push(format!("{} {secret} {grant}", s.id));
        playlists.push(format!("/o/{grant}/{playlist}"));
        segments.push(format!("/o/{grant}/{segment}"));
    }
    write_lines(&cfg.out.join("sessions.txt"), lines.iter())?;
    write_lines(&cfg.out.join("playlists.txt"), playlists.iter())?;
    write_lines(&cfg.out.join("segments.txt"), segments.iter())?;

    let report = PrepareReport {
        show_id,
        registered,
        sessions: sessions.len(),
        heartbeat_s: first.heartbeat_s,
        register_s,
        admit_s,
        playlist,
        playlist_bytes: media.len(),
        master_bytes: master.len(),
        segment,
        segment_bytes: seg_body.len(),
        ops: rec.report(None),
        config: cfg,
    };
    std::fs::write(
        report.config.out.join("prepare.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(report)
}

/// Admits every token on a fresh device over all lanes, in order; any refusal fails the run.
async fn admit_all(
    lanes: &Arc<Lanes>,
    rec: &Recorder,
    tokens: Arc<Vec<String>>,
) -> anyhow::Result<Vec<Session>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..lanes.len() {
        let (lanes, tokens, next) = (lanes.clone(), tokens.clone(), next.clone());
        workers.spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else {
                    return Ok(got);
                };
                match api::admit(&lanes, w, token, &api::make_device(), None).await {
                    Outcome::Ok(s, latency) => got.push((i, s, latency)),
                    Outcome::Http(r) => bail!(
                        "admit of ticket {i}: {} {}",
                        r.status,
                        String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
                    ),
                    Outcome::Failed(f) => bail!("admit of ticket {i}: {f}"),
                }
            }
        });
    }
    let mut sessions: Vec<Option<Session>> = vec![None; tokens.len()];
    while let Some(joined) = workers.join_next().await {
        for (i, s, latency) in joined.context("an admit worker failed")?? {
            rec.ok(Op::Admit, latency, 1);
            sessions[i] = Some(s);
        }
    }
    sessions
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .context("a ticket was left without a session")
}

/// The body of a successful answer, else an error naming `path`.
fn body(path: &str, out: Outcome<bytes::Bytes>) -> anyhow::Result<bytes::Bytes> {
    match out {
        Outcome::Ok(b, _) => Ok(b),
        Outcome::Http(r) => bail!(
            "GET {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body[..r.body.len().min(300)])
        ),
        Outcome::Failed(f) => bail!("GET {path}: {f}"),
    }
}

/// The part of an origin URI after `/o/{grant}/`.
fn under_grant(uri: &str) -> Option<&str> {
    let (_grant, path) = uri.strip_prefix("/o/")?.split_once('/')?;
    (!path.is_empty()).then_some(path)
}

/// A playlist URI relative to the playlist at `base` (a path without a leading `/`), resolved as a
/// player does; an absolute path `/o/{grant}/x` is not expected in the origin's media playlists.
fn join_relative(base: &str, uri: &str) -> String {
    match base.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{uri}"),
        None => uri.to_owned(),
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write_lines<I, S>(path: &Path, lines: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut text = String::new();
    for l in lines {
        text.push_str(l.as_ref());
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_is_read_under_its_grant() {
        assert_eq!(
            under_grant("/o/abc.def/demo/360p/index.m3u8"),
            Some("demo/360p/index.m3u8")
        );
        assert_eq!(under_grant("/o/abc.def/"), None);
        assert_eq!(under_grant("https://cdn.example/demo/x.m3u8"), None);
    }

    #[test]
    fn a_segment_is_resolved_beside_its_playlist() {
        assert_eq!(
            join_relative("demo/360p/index.m3u8", "seg_000.ts"),
            "demo/360p/seg_000.ts"
        );
        assert_eq!(join_relative("index.m3u8", "seg_000.ts"), "seg_000.ts");
    }
}
