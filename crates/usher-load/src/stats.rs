//! What a run measured: an HDR latency histogram, counts and errors by kind per operation, and the
//! checks of the lease protocol (false refusals, over-admissions), with their table and JSON forms.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::{Failure, Reply};

/// An operation of the load tool, each with its own histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `POST /api/v1/tickets/batch` (items are tickets).
    Register,
    /// `POST /api/v1/playback`.
    Admit,
    /// `POST /api/v1/playback/{id}/heartbeat`.
    Heartbeat,
    /// Master and media playlists.
    Playlist,
    /// Media segments from the origin (items are bytes).
    Segment,
    /// `DELETE /api/v1/playback/{id}`.
    Leave,
    /// A plain `GET` (ceiling runs).
    Get,
    /// `GET /hls/{id}/steering.json`, the content-steering reload (also a heartbeat).
    Steering,
    /// `GET /keys/{id}`, a content key with the session's credentials (checked, not renewed).
    Key,
    /// `POST /api/v1/playback` answered 202: a place in a show's waiting room (doors-open capacity).
    Wait,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 10] = [
        Op::Register,
        Op::Admit,
        Op::Wait,
        Op::Heartbeat,
        Op::Steering,
        Op::Playlist,
        Op::Segment,
        Op::Leave,
        Op::Get,
        Op::Key,
    ];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Admit => "admit",
            Op::Heartbeat => "heartbeat",
            Op::Playlist => "playlist",
            Op::Segment => "segment",
            Op::Leave => "leave",
            Op::Get => "get",
            Op::Steering => "steering",
            Op::Key => "key",
            Op::Wait => "wait",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

struct OpStats {
    hist: Histogram<u64>,
    ok: u64,
    refused: u64,
    items: u64,
    errors: BTreeMap<String, u64>,
    busy: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl OpStats {
    fn new() -> Self {
        Self {
            hist: Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds"),
            ok: 0,
            refused: 0,
            items: 0,
            errors: BTreeMap::new(),
            busy: Duration::ZERO,
            first: None,
            last: None,
        }
    }

    fn seen(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    fn latency(&mut self, latency: Duration) {
        self.busy += latency;
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.hist.saturating_record(us);
    }
}

/// The lease protocol's checks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checks {
    /// A viewer with its own ticket was refused (admit, heartbeat or steering reload) although nobody
    /// else used it, or a shared ticket had fewer sessions playing in a heartbeat round than it allows
    /// (of those its devices held).
    pub false_refusals: u64,
    /// Heartbeat rounds in which more sessions of one ticket got 200 than the ticket allows devices.
    pub over_admissions: u64,
    /// Sessions above the limit, summed over those rounds.
    pub over_admitted_devices: u64,
    /// Heartbeat rounds checked in sharing mode (one per ticket per round).
    pub rounds_checked: u64,
    /// Refusals the protocol owes (a superseded device in sharing mode, a copy refused with
    /// `session_cloned`); not errors.
    pub expected_refusals: u64,
    /// Sharing attack: devices that started with a copy of another device's credentials (its session id,
    /// secret and device id).
    pub clones_made: u64,
    /// Heartbeats of a copied session's holders refused with `session_cloned` (owed: counted in
    /// `expected_refusals` as well).
    pub clones_refused: u64,
    /// Devices beyond one still playing on one session from its second heartbeat round on: copies the
    /// server failed to tell apart within two heartbeat intervals (fails the run).
    pub clones_unstopped: u64,
    /// Viewers with their own ticket whose playing session the server ended before they left: a heartbeat
    /// or steering reload refused (4xx). Each is also a false refusal.
    pub sessions_lost: u64,
    /// Admits of a viewer's own ticket refused (4xx). Each is also a false refusal.
    pub false_admit_refusals: u64,
}

/// How viewers rode a store outage (`--expect-outage`): admits told to come back later, heartbeats
/// answered `degraded`. Times are Unix milliseconds of the answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outage {
    /// Admits answered 503 (or 429) with the viewer asking again after `Retry-After`.
    pub admits_unavailable: u64,
    /// The first and the last of those answers.
    pub first_admit_unavailable_at_ms: Option<i64>,
    /// See `first_admit_unavailable_at_ms`.
    pub last_admit_unavailable_at_ms: Option<i64>,
    /// Admits that succeeded after waiting.
    pub admits_paused: u64,
    /// Longest from an admit's first ask to its success after waiting, milliseconds.
    pub longest_admit_pause_ms: u64,
    /// Heartbeats answered `degraded` (the session plays on its grant and secret).
    pub heartbeats_degraded: u64,
    /// The first and the last of those answers.
    pub first_degraded_at_ms: Option<i64>,
    /// See `first_degraded_at_ms`.
    pub last_degraded_at_ms: Option<i64>,
    /// Viewers that got at least one `degraded` heartbeat.
    pub viewers_degraded: u64,
    /// Of those, the viewers whose session renewed again afterwards (played through the outage).
    pub viewers_recovered: u64,
    /// Of those, the viewers that left (their watch was over, or the run) before their next heartbeat.
    pub viewers_left_degraded: u64,
    /// Leaves answered 503 or 429 (the store cannot free the seat; its lease lapses by itself).
    pub leaves_unavailable: u64,
    /// Leaves of degraded viewers answered 404 `session_unknown` or 410 `session_expired`: the lease
    /// lapsed during the outage and the viewer left before a heartbeat held it again.
    pub leaves_lapsed: u64,
    /// Master playlists answered 503 or 429 (a player starting during the outage), asked again.
    pub playlists_unavailable: u64,
}

/// Now, in Unix milliseconds.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Outage {
    /// An admit told to come back later, at `at_ms`.
    pub fn admit_unavailable(&mut self, at_ms: i64) {
        self.admits_unavailable += 1;
        self.first_admit_unavailable_at_ms.get_or_insert(at_ms);
        self.last_admit_unavailable_at_ms = Some(at_ms);
    }

    /// A heartbeat answered `degraded`, at `at_ms`; `first` when it is its viewer's first.
    pub fn degraded(&mut self, at_ms: i64, first: bool) {
        self.heartbeats_degraded += 1;
        self.first_degraded_at_ms.get_or_insert(at_ms);
        self.last_degraded_at_ms = Some(at_ms);
        if first {
            self.viewers_degraded += 1;
        }
    }
}

struct Inner {
    ops: Vec<OpStats>,
    checks: Checks,
    outage: Outage,
}

/// Collects measurements from every simulated viewer (short critical sections, never across `.await`).
pub struct Recorder {
    inner: Mutex<Inner>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

/// The problem `code` of an error answer, when it has one.
pub fn problem_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("code")?.as_str().map(str::to_owned)
}

/// Whether an error label names a refusal (an answer 4xx) rather than a failed request.
pub fn is_refusal_kind(kind: &str) -> bool {
    kind.as_bytes().first() == Some(&b'4') && kind.as_bytes().get(3).is_none_or(|b| *b == b' ')
}

/// The error label of an HTTP answer that is not the expected success: `"503 store_unavailable"`.
pub fn http_kind(reply: &Reply) -> String {
    match problem_code(&reply.body) {
        Some(code) => format!("{} {code}", reply.status.as_u16()),
        None => reply.status.as_u16().to_string(),
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                ops: Op::ALL.iter().map(|_| OpStats::new()).collect(),
                checks: Checks::default(),
                outage: Outage::default(),
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// Forgets everything (the end of a warm-up).
    pub fn reset(&self) {
        self.with(|i| {
            *i = Inner {
                ops: Op::ALL.iter().map(|_| OpStats::new()).collect(),
                checks: Checks::default(),
                outage: Outage::default(),
            }
        });
    }

    /// A success of `op` carrying `items` (tickets, bytes, or 1).
    pub fn ok(&self, op: Op, latency: Duration, items: u64) {
        let now = Instant::now();
        self.with(|i| {
            let s = &mut i.ops[op.index()];
            s.ok += 1;
            s.items += items;
            s.latency(latency);
            s.seen(now);
        });
    }

    /// A refusal the protocol owes (answered, timed, not an error).
    pub fn refused(&self, op: Op, latency: Duration) {
        let now = Instant::now();
        self.with(|i| {
            let s = &mut i.ops[op.index()];
            s.refused += 1;
            s.latency(latency);
            s.seen(now);
            i.checks.expected_refusals += 1;
        });
    }

    /// An error of `op` labelled `kind`.
    pub fn error(&self, op: Op, kind: String) {
        let now = Instant::now();
        self.with(|i| {
            let s = &mut i.ops[op.index()];
            *s.errors.entry(kind).or_default() += 1;
            s.seen(now);
        });
    }

    /// An answer that is not the expected success.
    pub fn http_error(&self, op: Op, reply: &Reply) {
        self.error(op, http_kind(reply));
    }

    /// A request without an answer.
    pub fn failure(&self, op: Op, failure: &Failure) {
        self.error(op, failure.kind().to_owned());
    }

    /// Updates the protocol checks.
    pub fn check(&self, f: impl FnOnce(&mut Checks)) {
        self.with(|i| f(&mut i.checks));
    }

    /// Updates the outage figures.
    pub fn outage(&self, f: impl FnOnce(&mut Outage)) {
        self.with(|i| f(&mut i.outage));
    }

    /// The outage figures so far.
    pub fn outage_report(&self) -> Outage {
        self.with(|i| i.outage.clone())
    }

    /// Errors so far that are no refusal: requests without an answer (`connect`, `timeout`,
    /// `transport`), server errors (5xx) and unexpected answers (a `degraded` heartbeat outside
    /// `--expect-outage` is labelled `200`). Answers 4xx are refusals, counted by the checks.
    pub fn failed_requests(&self) -> u64 {
        self.with(|i| {
            i.ops
                .iter()
                .flat_map(|s| s.errors.iter())
                .filter(|(kind, _)| !is_refusal_kind(kind))
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// Successes and errors so far per operation, for progress lines.
    pub fn counts(&self) -> Vec<(Op, u64, u64)> {
        self.with(|i| {
            Op::ALL
                .iter()
                .map(|&op| {
                    let s = &i.ops[op.index()];
                    (op, s.ok + s.refused, s.errors.values().sum())
                })
                .collect()
        })
    }

    /// The checks so far.
    pub fn checks(&self) -> Checks {
        self.with(|i| i.checks.clone())
    }

    /// Every operation that saw traffic. Rates are over `window` when given (closed-loop runs), else over
    /// each operation's first to last event (or, for a single request, over its latency).
    pub fn report(&self, window: Option<Duration>) -> Vec<OpReport> {
        self.with(|i| {
            Op::ALL
                .iter()
                .filter_map(|&op| {
                    let s = &i.ops[op.index()];
                    let errors: u64 = s.errors.values().sum();
                    let answered = s.ok + s.refused;
                    if answered + errors == 0 {
                        return None;
                    }
                    let span = window.unwrap_or_else(|| match (s.first, s.last) {
                        (Some(a), Some(b)) if b > a => b - a,
                        _ => s.busy,
                    });
                    let secs = span.as_secs_f64();
                    let rate = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
                    let ms = |us: u64| us as f64 / 1000.0;
                    let h = &s.hist;
                    Some(OpReport {
                        op,
                        requests: answered + errors,
                        ok: s.ok,
                        refused: s.refused,
                        errors,
                        error_kinds: s.errors.clone(),
                        items: s.items,
                        span_s: secs,
                        rate_per_s: rate(answered),
                        items_per_s: rate(s.items),
                        latency_ms: Latency {
                            p50: ms(h.value_at_quantile(0.50)),
                            p90: ms(h.value_at_quantile(0.90)),
                            p99: ms(h.value_at_quantile(0.99)),
                            p999: ms(h.value_at_quantile(0.999)),
                            max: ms(h.max()),
                            mean: h.mean() / 1000.0,
                        },
                    })
                })
                .collect()
        })
    }
}

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// One operation's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    /// The operation.
    pub op: Op,
    /// Requests sent.
    pub requests: u64,
    /// Expected successes.
    pub ok: u64,
    /// Refusals the protocol owes (sharing mode).
    pub refused: u64,
    /// Everything else.
    pub errors: u64,
    /// Errors by kind: `"<status> <problem code>"`, `connect`, `timeout`, `transport`.
    pub error_kinds: BTreeMap<String, u64>,
    /// Tickets (register), bytes (segment) or one per success.
    pub items: u64,
    /// Seconds the rate is taken over.
    pub span_s: f64,
    /// Answered requests per second.
    pub rate_per_s: f64,
    /// Items per second.
    pub items_per_s: f64,
    /// Latency of answered requests.
    pub latency_ms: Latency,
}

/// The table form of a report.
pub fn table(reports: &[OpReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>9} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "op",
        "requests",
        "ok",
        "errors",
        "rate/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    for r in reports {
        let l = &r.latency_ms;
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            r.op.name(),
            r.requests,
            r.ok + r.refused,
            r.errors,
            r.rate_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max
        );
        if r.op == Op::Register {
            let _ = writeln!(out, "{:<10} {:.0} tickets/s", "", r.items_per_s);
        }
        if r.op == Op::Segment {
            let _ = writeln!(out, "{:<10} {:.1} MB/s", "", r.items_per_s / 1_000_000.0);
        }
        for (kind, n) in &r.error_kinds {
            let _ = writeln!(out, "{:<10}   error {kind}: {n}", "");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_rates_and_error_kinds() {
        let rec = Recorder::new();
        for ms in 1..=100 {
            rec.ok(Op::Heartbeat, Duration::from_millis(ms), 1);
        }
        rec.error(Op::Heartbeat, "503 store_unavailable".into());
        rec.error(Op::Heartbeat, "timeout".into());
        let r = rec.report(Some(Duration::from_secs(10)));
        assert_eq!(r.len(), 1);
        let hb = &r[0];
        assert_eq!((hb.ok, hb.errors, hb.requests), (100, 2, 102));
        assert!((hb.rate_per_s - 10.0).abs() < 1e-9);
        assert!(
            (hb.latency_ms.p50 - 50.0).abs() < 0.1,
            "{:?}",
            hb.latency_ms
        );
        assert!(
            (hb.latency_ms.p99 - 99.0).abs() < 0.1,
            "{:?}",
            hb.latency_ms
        );
        assert!((hb.latency_ms.max - 100.0).abs() < 0.1);
        assert_eq!(hb.error_kinds["timeout"], 1);
        assert!(table(&r).contains("error 503 store_unavailable: 1"));
        rec.reset();
        assert!(rec.report(None).is_empty());
    }

    #[test]
    fn refusals_are_told_from_failed_requests_by_their_label() {
        for kind in [
            "404 session_unknown",
            "410 session_expired",
            "403",
            "429 rate_limited",
        ] {
            assert!(is_refusal_kind(kind), "{kind}");
        }
        for kind in [
            "503 store_unavailable",
            "502",
            "200",
            "timeout",
            "transport",
            "connect",
            "4040",
        ] {
            assert!(!is_refusal_kind(kind), "{kind}");
        }
        let rec = Recorder::new();
        rec.error(Op::Heartbeat, "410 session_expired".into());
        rec.error(Op::Heartbeat, "503".into());
        rec.error(Op::Admit, "transport".into());
        assert_eq!(rec.failed_requests(), 2);
    }

    #[test]
    fn problem_codes_are_read_from_problem_json() {
        assert_eq!(
            problem_code(br#"{"type":"about:blank","code":"superseded"}"#).as_deref(),
            Some("superseded")
        );
        assert_eq!(problem_code(b"not json"), None);
    }
}
