//! The viewer scenario: N viewers admit (a ramp or a "doors open" storm), heartbeat at the server's
//! interval with jitter, optionally fetch playlists and segments from the origin and reload the
//! content-steering manifest, and leave at the end.
//!
//! Each viewer is an app playing as the watch page does: it keeps its session's secret from the admit,
//! sends the current one with every heartbeat, leave, master playlist and steering reload, and adopts the
//! next one from each heartbeat's answer. Its steering reloads send the secret in the header, so they
//! only check the seat (the heartbeats renew), as the watch page's player does with its cookie; the tool
//! does not model a native player, which renews by its steering reloads' `?secret=` URL chain instead of
//! heartbeating.
//!
//! In sharing-attack mode each ticket is shared by D devices, the two ways a ticket can be shared:
//! - **Copied credentials.** Device 0 admits; the other D − 1 start with a copy of its credentials (session
//!   id, secret and device id: a copied cookie jar or app state) and heartbeat on their own. They share one
//!   seat only until the secret moves: by the second heartbeat round every holder but one must be refused
//!   with `session_cloned` (a session still played by two devices after that is a `clones_unstopped`).
//! - **A shared ticket.** A refused device takes a seat with the ticket itself, presenting the secret it
//!   holds, as the page's "Watch here" does; from then on the devices take seats from each other (newest
//!   wins) and heartbeat in rounds: every device with a session heartbeats, the sessions with a 200 are
//!   counted (more than k is an over-admission, fewer than min(k, sessions held) a false refusal), then
//!   every device that was refused admits again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use hyper::header::HeaderValue;
use rand::Rng as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::api::{self, Outcome, Registered, Session};
use crate::client::Lanes;
use crate::setup::{self, Server};
use crate::stats::{Checks, Op, OpReport, Outage, Recorder, problem_code, unix_ms};
use crate::system::{FdLimit, PhaseClock, PhaseUsage, ProcWatch};

/// How viewers arrive.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "seconds")]
pub enum Arrival {
    /// Evenly spaced over the seconds.
    Ramp(f64),
    /// At uniformly random instants within the seconds.
    DoorsOpen(f64),
}

impl Arrival {
    fn seconds(self) -> f64 {
        match self {
            Arrival::Ramp(s) | Arrival::DoorsOpen(s) => s,
        }
    }
}

/// A viewer run.
#[derive(Debug, Clone, Serialize)]
pub struct ViewersConfig {
    /// Viewers (devices) in all.
    pub viewers: usize,
    /// Devices sharing each ticket (1: every viewer has its own ticket).
    pub devices_per_ticket: usize,
    /// Devices each ticket allows at once (k).
    pub max_devices: u32,
    /// How they arrive.
    pub arrival: Arrival,
    /// Seconds everyone keeps watching after the last arrival.
    pub duration_s: f64,
    /// Segments each viewer fetches per heartbeat interval (0: none).
    pub segments: u32,
    /// Seconds between a viewer's content-steering reloads (0: none), as players with content steering
    /// do besides the page's heartbeats.
    pub steering_s: f64,
    /// Relative jitter of the heartbeat interval (0.05: ±5 %).
    pub jitter: f64,
    /// Connections (0: one per viewer).
    pub connections: usize,
    /// Seconds between progress lines on stderr (0: none).
    pub progress_s: f64,
    /// Seconds each viewer with its own ticket watches before it leaves and comes back at once with a
    /// fresh admit of its ticket (±25 %, the first while anywhere up to 1.25×; 0: it watches to the end),
    /// so admits, playlists and leaves go on through the whole run, not only while viewers arrive.
    pub watch_s: f64,
    /// Viewers ride a store outage as the watch page does: an admit (or a starting player's master
    /// playlist) answered 503 or 429 asks again after its `Retry-After` (a failed admit after 2 s), a
    /// heartbeat answered `degraded` keeps the session and its secret and comes again after the interval
    /// it names, a leave answered 503 is not asked again. Those answers are counted in the report's
    /// `outage`, not as errors.
    pub expect_outage: bool,
}

/// What a viewer run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ViewersReport {
    /// The run's settings.
    pub config: ViewersConfig,
    /// Base URL.
    pub base_url: String,
    /// Show used.
    pub show_id: String,
    /// Heartbeat interval the server asked for.
    pub heartbeat_s: Option<u32>,
    /// Tickets registered.
    pub registered: Registered,
    /// Connections used and the open-files limit.
    pub connections: usize,
    /// The limit.
    pub fd_limit: FdLimit,
    /// TCP connections opened (reconnects included).
    pub connects: u64,
    /// Most sessions alive at once.
    pub peak_live_sessions: i64,
    /// Per operation.
    pub ops: Vec<OpReport>,
    /// Lease protocol checks.
    pub checks: Checks,
    /// Server CPU and memory per phase, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// The load tool's own CPU per phase.
    pub tool: Vec<PhaseUsage>,
    /// Errors of every operation together.
    pub errors: u64,
    /// Viewer tasks that panicked or were cancelled: each is a viewer whose outcome nobody counted.
    pub task_failures: u64,
    /// Errors that are no refusal: requests without an answer, answers 5xx, unexpected answers (see
    /// [`Recorder::failed_requests`]); refusals (4xx) are in `checks`.
    pub failed_requests: u64,
    /// How the viewers rode a store outage (`expect_outage`).
    pub outage: Outage,
    /// The run was ended early by SIGINT or SIGTERM (the viewers left within two seconds).
    pub stopped_early: bool,
    /// Whether the run passed: no error, no failed viewer task, no false refusal, no over-admission, no
    /// copied session played by two devices past its second heartbeat.
    pub passed: bool,
}

/// Server usage over a run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerUsage {
    /// Process id.
    pub pid: u32,
    /// Per phase (`registered`, `arrival`, `steady`, `leave`).
    pub phases: Vec<PhaseUsage>,
    /// RSS before the first admit, MiB.
    pub rss_before_mib: f64,
    /// RSS at the end of the steady phase, MiB.
    pub rss_steady_mib: f64,
    /// Peak RSS (VmHWM), MiB.
    pub rss_peak_mib: f64,
    /// (RSS at the end of the steady phase − RSS before the first admit) / peak live sessions.
    pub bytes_per_session: f64,
}

struct Shared {
    lanes: Arc<Lanes>,
    rec: Arc<Recorder>,
    live: AtomicI64,
    peak: AtomicI64,
    end: Instant,
    jitter: f64,
    segments: u32,
    steering_s: f64,
    max_devices: u32,
    heartbeat_s: std::sync::atomic::AtomicU32,
    watch_s: f64,
    expect_outage: bool,
    /// True once the run is told to stop early.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// How a viewer's session ended.
enum Played {
    /// It left at the end of the run, or lost its session: the viewer is done.
    Done,
    /// It left after watching its while: it comes back with a fresh admit.
    Again,
}

impl Shared {
    fn stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Whether a step due at `when` is past the run's end (or the run was stopped).
    fn over(&self, when: Instant) -> bool {
        when >= self.end || self.stopping()
    }

    /// Sleeps until `when`; false when the run was stopped meanwhile.
    async fn sleep_until(&self, when: Instant) -> bool {
        let mut rx = self.stopping.clone();
        tokio::select! {
            () = tokio::time::sleep_until(when) => !self.stopping(),
            _ = rx.wait_for(|s| *s) => false,
        }
    }

    fn joined(&self) {
        let now = self.live.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn left(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    fn next_beat(&self, from: Instant, heartbeat_s: u32) -> Instant {
        let f = if self.jitter > 0.0 {
            rand::thread_rng().gen_range(1.0 - self.jitter..1.0 + self.jitter)
        } else {
            1.0
        };
        from + Duration::from_secs_f64(f64::from(heartbeat_s) * f)
    }
}

/// Runs the viewer scenario against `server`; `server_pid` adds the server's CPU and memory.
///
/// # Errors
/// When setup fails (limits, show, tickets); errors during the run are counted, not returned.
pub async fn run(
    server: &Server,
    cfg: ViewersConfig,
    server_pid: Option<u32>,
) -> anyhow::Result<ViewersReport> {
    run_until(server, cfg, server_pid, std::future::pending()).await
}

/// [`run`], ended early when `stop` resolves: no viewer arrives after it, and every viewer playing
/// with its own ticket leaves within two seconds (a shared ticket's devices at their next beat); the
/// report's `stopped_early`.
///
/// # Errors
/// As [`run`].
pub async fn run_until(
    server: &Server,
    cfg: ViewersConfig,
    server_pid: Option<u32>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ViewersReport> {
    let d = cfg.devices_per_ticket.max(1);
    let want = if cfg.connections == 0 {
        cfg.viewers
    } else {
        cfg.connections.min(cfg.viewers.max(1))
    };
    let (connections, fd_limit) = setup::connection_budget(want + 1, cfg.connections != 0)?;
    let connections = connections.saturating_sub(1).max(1);
    let rec = Arc::new(Recorder::new());
    let admin = setup::lanes(server, 1).await?;
    let show_id = setup::prepare_show(&admin, server, cfg.max_devices).await?;
    let n_tickets = cfg.viewers.div_ceil(d);
    let started = std::time::Instant::now();
    let (tokens, registered) =
        setup::prepare_tickets(&admin, &rec, server, &show_id, n_tickets).await?;
    eprintln!(
        "usher-load: registered {n_tickets} tickets for show `{show_id}` in {:.1} s; {} viewers over {connections} connections",
        started.elapsed().as_secs_f64(),
        cfg.viewers
    );
    let lanes = setup::lanes(server, connections).await?;
    let server_watch = server_pid.map(ProcWatch::new).transpose()?;
    let mut server_clock = server_watch.map(PhaseClock::start).transpose()?;
    let mut tool_clock = PhaseClock::start(ProcWatch::new(std::process::id())?)?;

    let t0 = Instant::now() + Duration::from_millis(200);
    let arrival_end = t0 + Duration::from_secs_f64(cfg.arrival.seconds());
    let end = arrival_end + Duration::from_secs_f64(cfg.duration_s);
    let (stop_tx, stopping) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        lanes,
        rec: rec.clone(),
        live: AtomicI64::new(0),
        peak: AtomicI64::new(0),
        end,
        jitter: cfg.jitter,
        segments: cfg.segments,
        steering_s: cfg.steering_s,
        max_devices: cfg.max_devices,
        heartbeat_s: std::sync::atomic::AtomicU32::new(0),
        watch_s: cfg.watch_s,
        expect_outage: cfg.expect_outage,
        stopping,
    });
    let mut tasks = tokio::task::JoinSet::new();
    let mut rng = rand::thread_rng();
    for t in 0..n_tickets {
        let devices = d.min(cfg.viewers - t * d);
        let at = t0
            + match cfg.arrival {
                Arrival::Ramp(s) => Duration::from_secs_f64(s * t as f64 / n_tickets as f64),
                Arrival::DoorsOpen(s) => Duration::from_secs_f64(rng.gen_range(0.0..s.max(1e-9))),
            };
        let shared = shared.clone();
        let tokens = tokens.clone();
        if d == 1 {
            tasks.spawn(async move { viewer(&shared, t, &tokens[t], at).await });
        } else {
            tasks.spawn(async move { sharing_ticket(&shared, t, devices, &tokens[t], at).await });
        }
    }

    let progress = (cfg.progress_s > 0.0).then(|| {
        let shared = shared.clone();
        let every = Duration::from_secs_f64(cfg.progress_s);
        let watch = server_clock.as_ref().map(|c| c.watch().clone());
        tokio::spawn(progress_lines(shared, t0, every, watch))
    });

    tokio::pin!(stop);
    let mut stopped_early = false;
    // sleeps until `when` unless told to stop (then every later sleep returns at once)
    let mut sleep_or_stop = async |when: Instant| {
        if !stopped_early {
            tokio::select! {
                () = tokio::time::sleep_until(when) => {}
                () = &mut stop => {
                    eprintln!("usher-load: stopping early: the viewers leave");
                    stopped_early = true;
                    let _ = stop_tx.send(true);
                }
            }
        }
    };
    sleep_or_stop(t0).await;
    if let Some(c) = server_clock.as_mut() {
        c.mark("registered");
    }
    tool_clock.mark("registered");
    let rss_before = server_clock.as_ref().map(|c| c.last().rss_kib);
    sleep_or_stop(arrival_end).await;
    if let Some(c) = server_clock.as_mut() {
        c.mark("arrival");
    }
    tool_clock.mark("arrival");
    sleep_or_stop(end).await;
    if let Some(c) = server_clock.as_mut() {
        c.mark("steady");
    }
    tool_clock.mark("steady");
    let rss_steady = server_clock.as_ref().map(|c| c.last().rss_kib);
    let mut task_failures = 0u64;
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            eprintln!("usher-load: a viewer task failed: {e}");
            task_failures += 1;
        }
    }
    if let Some(c) = server_clock.as_mut() {
        c.mark("leave");
    }
    tool_clock.mark("leave");
    if let Some(p) = progress {
        p.abort();
    }

    let peak = shared.peak.load(Ordering::Relaxed);
    let server_usage = server_clock.map(|c| {
        let last = c.watch().sample().ok();
        let before = rss_before.unwrap_or(0) as f64;
        let steady = rss_steady.unwrap_or(0) as f64;
        ServerUsage {
            pid: c.watch().pid(),
            rss_before_mib: before / 1024.0,
            rss_steady_mib: steady / 1024.0,
            rss_peak_mib: last.map_or(0.0, |s| s.hwm_kib as f64 / 1024.0),
            bytes_per_session: if peak > 0 {
                (steady - before) * 1024.0 / peak as f64
            } else {
                0.0
            },
            phases: c.phases,
        }
    });
    let ops = rec.report(None);
    let checks = rec.checks();
    let errors: u64 = ops.iter().map(|o| o.errors).sum();
    let failed_requests = rec.failed_requests();
    let outage = rec.outage_report();
    let hb = shared.heartbeat_s.load(Ordering::Relaxed);
    Ok(ViewersReport {
        base_url: server.base_url.clone(),
        show_id,
        heartbeat_s: (hb > 0).then_some(hb),
        registered,
        connections,
        fd_limit,
        connects: shared.lanes.connects(),
        peak_live_sessions: peak,
        passed: errors == 0
            && task_failures == 0
            && checks.false_refusals == 0
            && checks.over_admissions == 0
            && checks.clones_unstopped == 0,
        errors,
        task_failures,
        failed_requests,
        outage,
        stopped_early,
        ops,
        checks,
        server: server_usage,
        tool: tool_clock.phases,
        config: cfg,
    })
}

/// A refusal of a viewer's own, unshared ticket: the server refused someone it should have let in.
fn false_refusal(shared: &Shared, outcome: &Outcome<impl Sized>) -> bool {
    if let Outcome::Http(r) = outcome
        && r.status.is_client_error()
    {
        shared.rec.check(|c| c.false_refusals += 1);
        return true;
    }
    false
}

/// A number in [0, 1) spread over viewers, so their steering reloads do not come in step.
fn fastrand_unit(i: usize) -> f64 {
    // the golden-ratio sequence: evenly spread, no state
    (i as f64 * 0.618_033_988_749_895).fract()
}

/// One viewer with its own ticket: admits, plays, and with `watch_s` leaves and comes back until the
/// end of the run.
async fn viewer(shared: &Shared, i: usize, token: &str, at: Instant) {
    if !shared.sleep_until(at).await {
        return;
    }
    let device = api::make_device();
    let mut start = at;
    // the first while is drawn from (0, 1.25] of `watch_s`, the next ones from [0.75, 1.25]: leaves and
    // comebacks are spread evenly from the first arrivals on, not bunched one `watch_s` after them
    let mut first = true;
    loop {
        let Some(session) = admit_own(shared, i, token, &device).await else {
            return;
        };
        let leave_at = (shared.watch_s > 0.0).then(|| {
            let low = if first { 0.02 } else { 0.75 };
            let f = rand::thread_rng().gen_range(low..1.25);
            Instant::now() + Duration::from_secs_f64(shared.watch_s * f)
        });
        first = false;
        match play(shared, i, session, start, leave_at).await {
            Played::Done => return,
            Played::Again => start = Instant::now(),
        }
    }
}

/// The admit of a viewer with its own ticket; any refusal is a false one. With `expect_outage` an
/// answer asking to come back later (503, 429) is waited out for its `Retry-After` (else 2 s), as the
/// watch page does, and a failed admit is tried again after 2 s.
async fn admit_own(shared: &Shared, i: usize, token: &str, device: &str) -> Option<Session> {
    let rec = &shared.rec;
    let asked = Instant::now();
    let mut waited = false;
    loop {
        let outcome = api::admit(&shared.lanes, i, token, device, None).await;
        if shared.expect_outage
            && let Outcome::Http(r) = &outcome
            && api::come_back_later(r)
        {
            rec.refused(Op::Admit, r.latency);
            rec.outage(|o| o.admit_unavailable(unix_ms()));
            waited = true;
            let wait = Duration::from_secs(r.retry_after_s.unwrap_or(2).clamp(1, 30));
            if !shared.sleep_until(Instant::now() + wait).await {
                return None;
            }
            continue;
        }
        if false_refusal(shared, &outcome) {
            rec.check(|c| c.false_admit_refusals += 1);
        }
        let failed = match &outcome {
            Outcome::Ok(..) => false,
            Outcome::Http(r) => !r.status.is_client_error(),
            Outcome::Failed(_) => true,
        };
        match api::record(rec, Op::Admit, outcome, |_| 1) {
            Some(session) => {
                if waited {
                    let ms = u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX);
                    rec.outage(|o| {
                        o.admits_paused += 1;
                        o.longest_admit_pause_ms = o.longest_admit_pause_ms.max(ms);
                    });
                }
                return Some(session);
            }
            None if failed && shared.expect_outage => {
                waited = true;
                if !shared
                    .sleep_until(Instant::now() + Duration::from_secs(2))
                    .await
                {
                    return None;
                }
            }
            None => return None,
        }
    }
}

/// Plays an admitted session from `at` until the end of the run, or until `leave_at`, or until the
/// server ends it (a session lost).
async fn play(
    shared: &Shared,
    i: usize,
    mut session: Session,
    at: Instant,
    leave_at: Option<Instant>,
) -> Played {
    let lanes = &shared.lanes;
    let rec = &shared.rec;
    shared.joined();
    shared
        .heartbeat_s
        .store(session.heartbeat_s, Ordering::Relaxed);
    let mut media = if shared.segments > 0 {
        Media::open(shared, i, &session).await
    } else {
        None
    };
    let mut next = shared.next_beat(at, session.heartbeat_s);
    let steering = (shared.steering_s > 0.0).then(|| Duration::from_secs_f64(shared.steering_s));
    let mut next_steer = steering.map(|every| at + every.mul_f64(0.5 + fastrand_unit(i)));
    // the session was ended by the server (counted once), and it is riding an outage
    let mut lost = false;
    let mut degraded = false;
    loop {
        if let Some(when) = next_steer.filter(|w| *w < next) {
            if !shared.sleep_until(when).await {
                return leave_on_stop(shared, i, &session, degraded).await;
            }
            // checks the seat with the current secret; the heartbeats renew it
            let outcome = api::steering(lanes, i, &session).await;
            if false_refusal(shared, &outcome) && !lost {
                lost = true;
                rec.check(|c| c.sessions_lost += 1);
            }
            api::record(rec, Op::Steering, outcome, |_| 1);
            next_steer = steering.map(|every| when + every);
            continue;
        }
        if !shared.sleep_until(next).await {
            return leave_on_stop(shared, i, &session, degraded).await;
        }
        let again = leave_at.is_some_and(|t| next >= t);
        if shared.over(next) || again {
            leave(shared, i, &session, degraded).await;
            return if again && !shared.over(next) {
                Played::Again
            } else {
                Played::Done
            };
        }
        let outcome = api::heartbeat(lanes, i, &session).await;
        if shared.expect_outage
            && let Outcome::Http(r) = &outcome
            && let Some(wait_s) = api::degraded_interval(r)
        {
            // the store is unreachable: play on with the grant and secret held, come again soon
            rec.refused(Op::Heartbeat, r.latency);
            rec.outage(|o| o.degraded(unix_ms(), !degraded));
            degraded = true;
            next = shared.next_beat(next, wait_s);
            continue;
        }
        let refused = false_refusal(shared, &outcome);
        // a heartbeat without an answer keeps the secret: sending it again is a retry to the server
        if let Some(renewal) = api::record(rec, Op::Heartbeat, outcome, |_| 1) {
            session.adopt(renewal);
            if degraded {
                degraded = false;
                rec.outage(|o| o.viewers_recovered += 1);
            }
            if let Some(m) = media.as_mut() {
                m.fetch(shared, i, &session, shared.segments).await;
            }
        } else if refused {
            if !lost {
                rec.check(|c| c.sessions_lost += 1);
            }
            shared.left();
            return Played::Done;
        }
        next = shared.next_beat(next, session.heartbeat_s);
    }
}

/// A viewer leaves (`degraded`: its last heartbeat was answered `degraded`). With `expect_outage` a
/// leave answered 503 or 429 is owed (the store cannot free the seat; the lease lapses by itself) and is
/// not asked again, as a closing page's beacon is not; so is a degraded viewer's leave answered that its
/// session is over (its lease lapsed during the outage, and no heartbeat held it again before it left).
async fn leave(shared: &Shared, i: usize, session: &Session, degraded: bool) {
    let out = api::leave(&shared.lanes, i, session).await;
    match out {
        Outcome::Http(r) if shared.expect_outage && api::come_back_later(&r) => {
            shared.rec.refused(Op::Leave, r.latency);
            shared.rec.outage(|o| o.leaves_unavailable += 1);
        }
        // its lease lapsed in the store while it could not be renewed, and this viewer leaves before
        // its next heartbeat would have held it again: the seat is free either way
        Outcome::Http(r)
            if shared.expect_outage
                && degraded
                && matches!(
                    (r.status.as_u16(), problem_code(&r.body).as_deref()),
                    (404, Some("session_unknown")) | (410, Some("session_expired"))
                ) =>
        {
            shared.rec.refused(Op::Leave, r.latency);
            shared.rec.outage(|o| o.leaves_lapsed += 1);
        }
        other => {
            api::record(&shared.rec, Op::Leave, other, |()| 1);
        }
    }
    if degraded {
        shared.rec.outage(|o| o.viewers_left_degraded += 1);
    }
    shared.left();
}

/// The run was stopped: the viewer leaves within the next two seconds (spread, not all at once).
async fn leave_on_stop(shared: &Shared, i: usize, session: &Session, degraded: bool) -> Played {
    let pause = rand::thread_rng().gen_range(0.0..2.0);
    tokio::time::sleep(Duration::from_secs_f64(pause)).await;
    leave(shared, i, session, degraded).await;
    Played::Done
}

/// A viewer's place in the stream: the media playlist's directory and segments.
struct Media {
    dir: String,
    segments: Vec<String>,
    next: usize,
}

impl Media {
    /// Fetches the session's master playlist and its first variant's media playlist.
    async fn open(shared: &Shared, lane: usize, session: &Session) -> Option<Self> {
        let (lanes, rec) = (&shared.lanes, &shared.rec);
        let master = loop {
            let master = api::master(lanes, lane, session).await;
            // a player starting during a store outage: hls.js asks for its manifest again
            match master {
                Outcome::Http(r) if shared.expect_outage && api::come_back_later(&r) => {
                    rec.refused(Op::Playlist, r.latency);
                    rec.outage(|o| o.playlists_unavailable += 1);
                    let wait = Duration::from_secs(r.retry_after_s.unwrap_or(1).clamp(1, 5));
                    if !shared.sleep_until(Instant::now() + wait).await {
                        return None;
                    }
                }
                other => break other,
            }
        };
        let master = api::record(rec, Op::Playlist, master, |b| b.len() as u64)?;
        let variant = api::playlist_uris(&String::from_utf8_lossy(&master))
            .into_iter()
            .next()?;
        let text = api::fetch(lanes, lane, &variant).await;
        let text = api::record(rec, Op::Playlist, text, |b| b.len() as u64)?;
        // "/o/{grant}/{dir}/index.m3u8" → "{dir}"
        let rel = variant.strip_prefix("/o/")?.split_once('/')?.1;
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        let segments = api::playlist_uris(&String::from_utf8_lossy(&text));
        (!segments.is_empty()).then_some(Self {
            dir,
            segments,
            next: 0,
        })
    }

    /// Fetches the next `n` segments with the session's current grant.
    async fn fetch(&mut self, shared: &Shared, lane: usize, session: &Session, n: u32) {
        let Some(grant) = &session.grant else { return };
        for _ in 0..n {
            let seg = &self.segments[self.next % self.segments.len()];
            self.next += 1;
            let path = format!("/o/{grant}/{}/{seg}", self.dir);
            let out = api::fetch(&shared.lanes, lane, &path).await;
            api::record(&shared.rec, Op::Segment, out, |b| b.len() as u64);
        }
    }
}

/// One device of a shared ticket.
struct Holder {
    /// Its device id (the copies carry device 0's: it is in the copied credentials).
    device: String,
    /// The session it plays, if any.
    session: Option<Session>,
    /// The secret of its last session, presented when it admits again (as the page's cookie would be).
    held: Option<HeaderValue>,
}

impl Holder {
    /// Its session was refused: it keeps the secret to present at its next admit.
    fn drop_session(&mut self) {
        if let Some(s) = self.session.take() {
            self.held = s.secret;
        }
    }
}

/// One ticket shared by `devices` devices: copies of the first one's credentials, then the ticket itself,
/// heartbeating in rounds (see the module documentation).
async fn sharing_ticket(shared: &Shared, t: usize, devices: usize, token: &str, at: Instant) {
    if !shared.sleep_until(at).await {
        return;
    }
    let (lanes, rec) = (&shared.lanes, &shared.rec);
    let lane = |d: usize| t * devices + d;
    let admit_one = |d: usize, device: String, presented: Option<HeaderValue>| async move {
        let out = api::admit(lanes, lane(d), token, &device, presented.as_ref()).await;
        // newest_wins always admits: any refusal is a false one
        false_refusal(shared, &out);
        api::record(rec, Op::Admit, out, |_| 1)
    };
    let first = api::make_device();
    let Some(original) = admit_one(0, first.clone(), None).await else {
        return;
    };
    let h = original.heartbeat_s;
    shared.heartbeat_s.store(h, Ordering::Relaxed);
    // devices 1.. copy device 0's credentials: its session, secret and device id
    let copies = devices - 1;
    rec.check(|c| c.clones_made += copies as u64);
    let mut holders: Vec<Holder> = (0..devices)
        .map(|_| Holder {
            device: first.clone(),
            session: Some(original.clone()),
            held: None,
        })
        .collect();
    let k = shared.max_devices as usize;
    let seats = k.min(devices);
    (0..seats).for_each(|_| shared.joined());
    let mut next = shared.next_beat(at, h);
    let mut round = 0usize;
    loop {
        tokio::time::sleep_until(next).await;
        if shared.over(next) {
            let leaves = holders.iter().enumerate().filter_map(|(d, holder)| {
                let s = holder.session.as_ref()?;
                Some(async move {
                    let out = api::leave(lanes, lane(d), s).await;
                    // a device superseded since its last heartbeat, or a copy whose twin left first,
                    // has nothing to leave (404 session_unknown); a copy whose twin renewed past its
                    // secret is told so (409 session_cloned). Any other answer is an error.
                    match out {
                        Outcome::Http(r) if expected_leave_refusal(&r) => {
                            rec.refused(Op::Leave, r.latency)
                        }
                        other => {
                            api::record(rec, Op::Leave, other, |()| 1);
                        }
                    }
                })
            });
            join_all(leaves).await;
            (0..seats).for_each(|_| shared.left());
            return;
        }
        // phase 1: every device with a session heartbeats with the secret it holds
        let beats = holders.iter().enumerate().map(|(d, holder)| async move {
            match &holder.session {
                Some(s) => Some(api::heartbeat(lanes, lane(d), s).await),
                None => None,
            }
        });
        let results = join_all(beats).await;
        let held: HashSet<&str> = holders
            .iter()
            .filter_map(|x| x.session.as_ref().map(|s| s.id.as_str()))
            .collect();
        let held = held.len();
        // the devices that got a 200, by session
        let mut playing: HashMap<String, usize> = HashMap::new();
        let mut failed = false;
        for (d, r) in results.into_iter().enumerate() {
            let holder = &mut holders[d];
            match r {
                None => {}
                Some(Outcome::Ok(renewal, latency)) => {
                    rec.ok(Op::Heartbeat, latency, 1);
                    let s = holder
                        .session
                        .as_mut()
                        .expect("a device with a session beat");
                    s.adopt(renewal);
                    *playing.entry(s.id.clone()).or_default() += 1;
                }
                Some(Outcome::Http(r)) => match problem_code(&r.body).as_deref() {
                    Some("superseded") => {
                        rec.refused(Op::Heartbeat, r.latency);
                        holder.drop_session();
                    }
                    Some("session_cloned") => {
                        rec.refused(Op::Heartbeat, r.latency);
                        rec.check(|c| c.clones_refused += 1);
                        holder.drop_session();
                    }
                    _ => {
                        failed = true;
                        if r.status.is_client_error() {
                            holder.drop_session();
                        }
                        rec.http_error(Op::Heartbeat, &r);
                    }
                },
                Some(Outcome::Failed(f)) => {
                    // no answer: the device keeps its secret and sends it again next round
                    failed = true;
                    rec.failure(Op::Heartbeat, &f);
                }
            }
        }
        // the copied session plays on all its holders in the first round (each presents the admit's
        // secret: one moves it, the others look like retries); from the second round on the server must
        // have told them apart, and a session playing on two devices is a copy it missed
        let unstopped: usize = if round == 0 {
            0
        } else {
            playing.values().map(|n| n - 1).sum()
        };
        let sessions_playing = playing.len();
        rec.check(|c| {
            c.rounds_checked += 1;
            c.clones_unstopped += unstopped as u64;
            if sessions_playing > k {
                c.over_admissions += 1;
                c.over_admitted_devices += (sessions_playing - k) as u64;
            }
            if sessions_playing < k.min(held) && !failed {
                c.false_refusals += 1;
            }
        });
        // phase 2: the devices that lost their seat take one with the ticket, presenting what they hold
        let idle: Vec<usize> = (0..devices)
            .filter(|&d| holders[d].session.is_none())
            .collect();
        let again = join_all(
            idle.iter()
                .map(|&d| admit_one(d, holders[d].device.clone(), holders[d].held.clone())),
        )
        .await;
        for (d, s) in idle.into_iter().zip(again) {
            holders[d].session = s;
        }
        round += 1;
        next = shared.next_beat(next, h);
    }
}

/// One line on stderr every `every`: operations per second since the last line, errors, live sessions,
/// checks and the server's CPU and memory.
async fn progress_lines(
    shared: Arc<Shared>,
    t0: Instant,
    every: Duration,
    watch: Option<ProcWatch>,
) {
    let mut last = shared.rec.counts();
    let mut last_at = Instant::now();
    let mut last_sample = watch.as_ref().and_then(|w| w.sample().ok());
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let counts = shared.rec.counts();
        let dt = (now - last_at).as_secs_f64().max(1e-9);
        let mut line = format!(
            "[{:>7.1}s] live {:>6}",
            now.saturating_duration_since(t0).as_secs_f64(),
            shared.live.load(Ordering::Relaxed)
        );
        let mut errors = 0;
        for ((op, ok, err), (_, ok0, _)) in counts.iter().zip(&last) {
            errors += err;
            if ok > ok0 {
                line.push_str(&format!(" {} {:.0}/s", op.name(), (ok - ok0) as f64 / dt));
            }
        }
        let c = shared.rec.checks();
        line.push_str(&format!(
            " | errors {errors} false-refusals {} over-admissions {} lost {}",
            c.false_refusals, c.over_admissions, c.sessions_lost
        ));
        if shared.expect_outage {
            let o = shared.rec.outage_report();
            line.push_str(&format!(
                " | unavailable admits {} degraded heartbeats {}",
                o.admits_unavailable, o.heartbeats_degraded
            ));
        }
        if let (Some(w), Some(prev)) = (&watch, last_sample)
            && let Ok(s) = w.sample()
        {
            line.push_str(&format!(
                " | server {:.2} cores {:.0} MiB",
                w.cores(&prev, &s),
                s.rss_kib as f64 / 1024.0
            ));
            last_sample = Some(s);
        }
        eprintln!("{line}");
        last = counts;
        last_at = now;
    }
}

/// Whether a leave's refusal is one a device of a shared ticket may expect at the end of a run: its
/// session ended or was taken over (404 `session_unknown`), or its copy of the secret was retired by a
/// twin's renewal (409 `session_cloned`). Server errors, bad requests and every other code are not.
fn expected_leave_refusal(reply: &crate::client::Reply) -> bool {
    matches!(
        (reply.status.as_u16(), problem_code(&reply.body).as_deref()),
        (404, Some("session_unknown")) | (409, Some("session_cloned"))
    )
}
