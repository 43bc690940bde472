//! The doors-open scenario (`usher-load doors`): a show with a capacity, a crowd arriving at once. Every
//! arrival admits; a 202 puts it in the show's waiting room, where it asks again at the interval the
//! server says (`retry_after_s`), keeping its first place in line. Viewers let in heartbeat; once the
//! crowd has arrived, the earliest viewers leave at a steady pace, freeing seats for the line.
//!
//! It checks what the waiting room promises: the first `capacity` arrivals play at once; never more than
//! `capacity` play; everyone in line is let in, in arrival order as seats free (the door lets in any of
//! the first `free` in line, in the order they ask, so a waiter may go ahead of at most the seats that
//! free between two of its asks; reported with the rank correlation of place in line and order let in);
//! and no viewer playing is refused a heartbeat. Every arrival's first ask is an `admit` (answered with a
//! seat or a place), as is the ask that lets a waiter in; a waiter's asks in between are the waiting
//! room's polls (`wait`), each after `retry_after_s` with ±25 % jitter, as the watch page spreads them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::Method;
use hyper::header::HeaderValue;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::api::{self, Outcome, ShowSetup};
use crate::client::{Call, Lanes};
use crate::setup::{self, Server};
use crate::stats::{Op, OpReport, Recorder, http_kind};

/// What to run.
#[derive(Debug, Clone, Serialize)]
pub struct DoorsConfig {
    /// Viewers arriving at once.
    pub arrivals: usize,
    /// The show's capacity.
    pub capacity: u32,
    /// The show's admit rate (`None`: none).
    pub admit_rate_per_s: Option<u32>,
    /// Viewers leaving per second once the crowd has arrived (the earliest first).
    pub leave_per_s: f64,
    /// Longest a viewer waits in line before giving up, seconds.
    pub max_wait_s: f64,
    /// Connections.
    pub connections: usize,
}

/// What a run found.
#[derive(Debug, Serialize)]
pub struct DoorsReport {
    /// The run's settings.
    pub config: DoorsConfig,
    /// The show.
    pub show_id: String,
    /// Per operation.
    pub ops: Vec<OpReport>,
    /// Let in at their first ask.
    pub admitted_at_once: usize,
    /// Told to wait at their first ask.
    pub waited: usize,
    /// Of those, let in later.
    pub admitted_from_line: usize,
    /// Of those, not let in within `max_wait_s` (or failed).
    pub never_admitted: usize,
    /// Most viewers playing at once, as the tool counts them (a leaver stops counting before it leaves).
    pub peak_playing: usize,
    /// Spearman's rank correlation of first place in line and order let in (1: exactly in order).
    pub order_correlation: f64,
    /// The most viewers any waiter was let in ahead of, although they stood before it in line.
    pub max_overtaken: usize,
    /// What that may be: the seats that free between two asks of a waiter (twice, for their spread).
    pub overtake_bound: usize,
    /// Heartbeats of viewers playing that were refused.
    pub heartbeat_refusals: u64,
    /// Seconds from the arrivals to the last waiter let in.
    pub line_cleared_s: f64,
    /// Whether every check passed.
    pub passed: bool,
}

struct Shared {
    lanes: Arc<Lanes>,
    rec: Recorder,
    playing: AtomicUsize,
    peak: AtomicUsize,
    /// Viewers playing, in the order they were let in, each with the signal that tells it to leave.
    leavers: Mutex<VecDeque<Arc<Notify>>>,
    /// (first place in line, when let in) of every waiter let in.
    from_line: Mutex<Vec<(u64, Instant)>>,
    heartbeat_refusals: AtomicUsize,
    /// The longest `retry_after_s` the server told a waiter.
    max_retry_s: std::sync::atomic::AtomicU64,
}

enum Fate {
    AtOnce,
    FromLine,
    Never,
}

/// Runs the scenario.
///
/// # Errors
/// When the show or the tickets cannot be set up.
pub async fn run(server: &Server, cfg: DoorsConfig) -> anyhow::Result<DoorsReport> {
    let (connections, _) = setup::connection_budget(cfg.connections.max(1), false)?;
    let lanes = setup::lanes(server, connections).await?;
    let admin = server
        .admin_key
        .clone()
        .ok_or_else(|| anyhow::anyhow!("doors needs --admin-key: the run creates its show"))?;
    let show_id = server
        .show_id
        .clone()
        .unwrap_or_else(|| format!("doors-{}", api::make_device()[2..10].to_ascii_lowercase()));
    api::put_show(
        &lanes,
        &admin,
        &ShowSetup {
            id: show_id.clone(),
            heartbeat_s: server.heartbeat_s,
            max_devices: 1,
            stream_path: server.stream_path.clone(),
            encryption: server.encryption.clone(),
            capacity: Some(cfg.capacity),
            admit_rate_per_s: cfg.admit_rate_per_s,
        },
    )
    .await?;
    let rec = Recorder::new();
    let (tokens, _) = setup::prepare_tickets(&lanes, &rec, server, &show_id, cfg.arrivals).await?;
    rec.reset();
    let shared = Arc::new(Shared {
        lanes,
        rec,
        playing: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        leavers: Mutex::new(VecDeque::new()),
        from_line: Mutex::new(Vec::new()),
        heartbeat_refusals: AtomicUsize::new(0),
        max_retry_s: std::sync::atomic::AtomicU64::new(0),
    });
    let start = Instant::now();
    let max_wait = Duration::from_secs_f64(cfg.max_wait_s);
    let tasks: Vec<_> = tokens
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, token)| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { viewer(&shared, i, &token, start + max_wait).await })
        })
        .collect();
    // the crowd has arrived once every arrival has had its first answer: about one round trip each
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leaver = {
        let shared = Arc::clone(&shared);
        let every = Duration::from_secs_f64(1.0 / cfg.leave_per_s.max(0.01));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let next = shared
                    .leavers
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .pop_front();
                if let Some(n) = next {
                    n.notify_one();
                }
            }
        })
    };
    let mut fates = Vec::new();
    for t in tasks {
        fates.push(t.await.unwrap_or(Fate::Never));
    }
    leaver.abort();
    let line_cleared_s = start.elapsed().as_secs_f64();
    // everyone still playing leaves
    for n in shared
        .leavers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .drain(..)
    {
        n.notify_one();
    }

    let admitted_at_once = fates.iter().filter(|f| matches!(f, Fate::AtOnce)).count();
    let admitted_from_line = fates.iter().filter(|f| matches!(f, Fate::FromLine)).count();
    let never_admitted = fates.iter().filter(|f| matches!(f, Fate::Never)).count();
    let waited = admitted_from_line + never_admitted;
    let mut line = shared
        .from_line
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    line.sort_by_key(|(_, at)| *at);
    let (order_correlation, max_overtaken) = order(&line);
    let peak_playing = shared.peak.load(Ordering::SeqCst);
    let heartbeat_refusals = shared.heartbeat_refusals.load(Ordering::SeqCst) as u64;
    let ops = shared.rec.report(None);
    let errors: u64 = ops.iter().map(|o| o.errors).sum();
    let expected_at_once = cfg.arrivals.min(cfg.capacity as usize);
    // the door lets in any waiter among the first `free` in line, in the order they ask: a waiter may be
    // let in ahead of those before it by at most the seats that free between two of its asks (twice,
    // for the asks' own spread)
    let max_retry_s = shared.max_retry_s.load(Ordering::SeqCst) as f64;
    let overtake_bound = (cfg.leave_per_s * max_retry_s * 2.0).ceil() as usize;
    let passed = (cfg.admit_rate_per_s.is_some() || admitted_at_once == expected_at_once)
        && peak_playing <= cfg.capacity as usize
        && never_admitted == 0
        && heartbeat_refusals == 0
        && errors == 0
        && max_overtaken <= overtake_bound;
    Ok(DoorsReport {
        config: cfg,
        show_id,
        ops,
        admitted_at_once,
        waited,
        admitted_from_line,
        never_admitted,
        peak_playing,
        order_correlation,
        max_overtaken,
        overtake_bound,
        heartbeat_refusals,
        line_cleared_s,
        passed,
    })
}

/// Spearman's rank correlation of place in line and order let in (`line` sorted by when let in), and the
/// most waiters any one was let in ahead of.
fn order(line: &[(u64, Instant)]) -> (f64, usize) {
    let n = line.len();
    if n < 2 {
        return (1.0, 0);
    }
    let mut by_place: Vec<(u64, usize)> =
        line.iter().enumerate().map(|(i, (p, _))| (*p, i)).collect();
    by_place.sort_unstable();
    let mut d2 = 0.0;
    for (place_rank, (_, let_in_rank)) in by_place.iter().enumerate() {
        let d = place_rank as f64 - *let_in_rank as f64;
        d2 += d * d;
    }
    // for each waiter, those who stood before it in line and were let in after it
    let max_overtaken = (0..n)
        .map(|i| line[i + 1..].iter().filter(|(p, _)| *p < line[i].0).count())
        .max()
        .unwrap_or(0);
    let n = n as f64;
    (1.0 - 6.0 * d2 / (n * (n * n - 1.0)), max_overtaken)
}

async fn viewer(shared: &Shared, i: usize, token: &str, give_up: Instant) -> Fate {
    let lane = i % shared.lanes.len();
    let device = api::make_device();
    let body = serde_json::to_vec(&json!({ "token": token })).expect("JSON of a string");
    let device_header = HeaderValue::from_str(&device).expect("device ids are header-safe");
    let mut first_place = None;
    let session = loop {
        let call = Call::json(Method::POST, "/api/v1/playback", body.clone())
            .header(api::DEVICE_HEADER.clone(), device_header.clone());
        match shared.lanes.send(lane, call).await {
            Ok(r) if r.status.as_u16() == 201 => {
                shared.rec.ok(Op::Admit, r.latency, 1);
                match api::admission(&r.body) {
                    Some(s) => break s,
                    None => return Fate::Never,
                }
            }
            Ok(r) if r.status.as_u16() == 202 => {
                // the arrival itself is an admit, answered with a place; the asks after it are the
                // waiting room's polls
                let op = if first_place.is_none() {
                    Op::Admit
                } else {
                    Op::Wait
                };
                shared.rec.ok(op, r.latency, 1);
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                first_place.get_or_insert(v["position"].as_u64().unwrap_or(u64::MAX));
                if Instant::now() >= give_up {
                    return Fate::Never;
                }
                let wait = v["retry_after_s"].as_u64().unwrap_or(2).max(1);
                shared.max_retry_s.fetch_max(wait, Ordering::SeqCst);
                let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..1.25);
                tokio::time::sleep(Duration::from_secs_f64(wait as f64 * jitter)).await;
            }
            Ok(r) => {
                shared.rec.error(Op::Admit, http_kind(&r));
                return Fate::Never;
            }
            Err(f) => {
                shared.rec.failure(Op::Admit, &f);
                return Fate::Never;
            }
        }
    };
    let playing = shared.playing.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(playing, Ordering::SeqCst);
    if let Some(p) = first_place {
        shared
            .from_line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((p, Instant::now()));
    }
    let leave = Arc::new(Notify::new());
    shared
        .leavers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push_back(Arc::clone(&leave));
    play(shared, lane, session, &leave).await;
    if first_place.is_some() {
        Fate::FromLine
    } else {
        Fate::AtOnce
    }
}

/// Heartbeats until told to leave, then leaves (counted off before the leave is sent, so the tool never
/// counts more players than the server holds seats for).
async fn play(shared: &Shared, lane: usize, mut session: api::Session, leave: &Notify) {
    let every = Duration::from_secs(u64::from(session.heartbeat_s.max(1)));
    loop {
        tokio::select! {
            () = leave.notified() => break,
            () = tokio::time::sleep(every) => {
                match api::heartbeat(&shared.lanes, lane, &session).await {
                    Outcome::Ok(renewal, latency) => {
                        shared.rec.ok(Op::Heartbeat, latency, 1);
                        session.adopt(renewal);
                    }
                    Outcome::Http(r) => {
                        shared.rec.error(Op::Heartbeat, http_kind(&r));
                        shared.heartbeat_refusals.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    Outcome::Failed(f) => shared.rec.failure(Op::Heartbeat, &f),
                }
            }
        }
    }
    shared.playing.fetch_sub(1, Ordering::SeqCst);
    match api::leave(&shared.lanes, lane, &session).await {
        Outcome::Ok((), latency) => shared.rec.ok(Op::Leave, latency, 1),
        Outcome::Http(r) => shared.rec.error(Op::Leave, http_kind(&r)),
        Outcome::Failed(f) => shared.rec.failure(Op::Leave, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_one_in_order_and_counts_overtakes() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let in_order: Vec<_> = (1..=5).map(|p| (p, at(p))).collect();
        assert_eq!(order(&in_order), (1.0, 0));
        // the 5th let in first: it went ahead of four
        let mut swapped = vec![(5, at(0))];
        swapped.extend((1..=4).map(|p| (p, at(p))));
        let (rho, over) = order(&swapped);
        assert!(rho < 1.0 && over == 4, "{rho} {over}");
    }
}
