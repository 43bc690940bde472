//! Logs and metrics: JSON log lines with request ids and no secrets, Prometheus metrics by route.
//!
//! Request lines name the *route* (`/watch/{token}`), never the raw path, so tokens and grants in URLs
//! never reach a log, and no line names a client's address unless `log.client_addresses` is on
//! ([`crate::logged::client_address`]).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::http::error::ErrorCause;
use crate::settings::{LogFormat, LogSettings};

/// Installs the process-wide log subscriber (once; later calls are ignored, but each sets whether
/// client addresses are logged: [`crate::logged`]).
pub fn init_logging(log: &LogSettings) {
    crate::logged::show_client_addresses(log.client_addresses);
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The handle of the process-wide Prometheus recorder, once [`metrics_handle`] has installed it.
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &buckets)
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // another recorder may exist in tests that build several apps; ours still renders its own
            let _ = metrics::set_global_recorder(recorder);
            metrics::gauge!("usher_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// Reads the process's CPU time, memory, open files and start time into the `process_*` metrics (the names
/// every Prometheus client library uses), once per scrape.
pub fn collect_process_metrics() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(|| {
            let c = metrics_process::Collector::default();
            c.describe();
            c
        })
        .collect();
}

/// `usher_active_sessions{show}`: the sessions holding a lease per published show, as the background task
/// last read them from the store (every second, from counts the store keeps as leases change). A scrape
/// only renders them: no store call, no walk over sessions, and no label for a show that is not published
/// (its id may not be public yet).
#[derive(Debug, Default)]
pub struct SessionGauge(RwLock<Vec<(String, u64)>>);

impl SessionGauge {
    /// Replaces the counts (one per published show, 0 included).
    pub fn set(&self, counts: Vec<(String, u64)>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = counts;
    }

    /// The gauge in Prometheus text format.
    pub fn render(&self) -> String {
        let counts = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::from(
            "# HELP usher_active_sessions Sessions holding a lease, per published show.\n# TYPE usher_active_sessions gauge\n",
        );
        for (show, n) in counts.iter() {
            let show = show.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("usher_active_sessions{{show=\"{show}\"}} {n}\n"));
        }
        out
    }
}

/// Routes every playing viewer calls on a timer (heartbeats, steering reloads, playlists): their
/// successes are logged at debug, or 40,000 viewers would write thousands of lines a second that say
/// nothing (admits, refusals and errors stay at info).
fn is_periodic(route: &str) -> bool {
    matches!(
        route,
        "/api/v1/playback/{session_id}/heartbeat"
            | "/hls/{session}/steering.json"
            | "/hls/{session}/master.m3u8"
    )
}

/// The label of a route, method or status: the same `&'static str` for the same text, so the metrics on
/// every request allocate nothing. The texts come from finite sets (the router's routes, the standard
/// methods, three-digit statuses), so the table stays small. Each thread remembers the labels of the
/// texts it saw by their address (a route's `MatchedPath` is the same allocation on every request), so
/// a request takes no lock and hashes no text; the text is still compared, so an address reused for
/// another text (a test's router dropped and another built) finds its own label.
fn interned(text: &str) -> &'static str {
    thread_local! {
        static SEEN: RefCell<HashMap<(usize, usize), &'static str>> = RefCell::default();
    }
    let at = (text.as_ptr() as usize, text.len());
    if let Some(label) = SEEN.with(|m| m.borrow().get(&at).copied())
        && label == text
    {
        return label;
    }
    let label = interned_in_table(text);
    keep_in(&SEEN, at, label);
    label
}

/// How many entries each thread's caches of [`interned`] and [`request_metrics`] hold before they start
/// again empty: their keys come from finite sets, so this only bounds what tests' short-lived texts leave.
const KEPT_PER_THREAD: usize = 4096;

/// Puts `key` → `value` in a thread's cache, emptied first when it holds [`KEPT_PER_THREAD`].
fn keep_in<K: std::hash::Hash + Eq + 'static, V: 'static>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<K, V>>>,
    key: K,
    value: V,
) {
    cache.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= KEPT_PER_THREAD {
            m.clear();
        }
        m.insert(key, value);
    });
}

/// Where a `&'static str` is: its address and length, which name an interned label (and a method's).
fn place(s: &'static str) -> (usize, usize) {
    (s.as_ptr() as usize, s.len())
}

/// [`interned`]'s process-wide table.
fn interned_in_table(text: &str) -> &'static str {
    static TABLE: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let table = TABLE.get_or_init(Default::default);
    if let Some(s) = table
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(text)
    {
        return s;
    }
    let mut w = table
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = w.get(text) {
        return s;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    w.insert(leaked);
    leaked
}

/// A method's label: the standard ones by name, any other as `other` (a client can send any token as a
/// method, and each new label value would be a new time series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The handles of `usher_http_requests_total{route, method, status}` and
/// `usher_http_request_duration_seconds{route, method}`, each looked up in the recorder once per thread:
/// a lookup builds the metric's key, allocates its labels and hashes them under the registry's lock,
/// twice per request (BENCHMARKS.md, issue 16's twelfth step). The labels are [`interned`] (the method's
/// are [`method_label`]'s constants), so their places name them. Until the recorder is installed
/// ([`metrics_handle`]) nothing is kept, so a handle that records nowhere is never reused.
fn request_metrics(
    route: &'static str,
    method: &'static str,
    status: &'static str,
) -> (metrics::Counter, metrics::Histogram) {
    type Place = (usize, usize);
    type Handles = (metrics::Counter, metrics::Histogram);
    thread_local! {
        static KEPT: RefCell<HashMap<(Place, Place, Place), Handles>> = RefCell::default();
    }
    let key = (place(route), place(method), place(status));
    if let Some(h) = KEPT.with(|k| k.borrow().get(&key).cloned()) {
        return h;
    }
    let h = (
        metrics::counter!("usher_http_requests_total", "route" => route, "method" => method, "status" => status),
        metrics::histogram!("usher_http_request_duration_seconds", "route" => route, "method" => method),
    );
    if RECORDER.get().is_some() {
        keep_in(&KEPT, key, h.clone());
    }
    h
}

/// Middleware: one log line and the request metrics per request.
pub async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| interned(m.as_str()));
    let request_id = req.headers().get("x-request-id").cloned();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    let status_label = interned(res.status().as_str());
    let (requests, duration) = request_metrics(route, method, status_label);
    requests.increment(1);
    duration.record(elapsed.as_secs_f64());
    if status == 429 {
        // every 429 is a rate limit (`rate_limited`): which route's callers run into them
        metrics::counter!("usher_rate_limited_total", "route" => route).increment(1);
    }
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let request_id = request_id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(ErrorCause(cause)) = res.extensions().get::<ErrorCause>() {
        tracing::error!(http.method = %method, http.route = %route, http.status = status, request.id = %request_id, duration_ms, error.cause = %cause, "request failed");
    } else if route.starts_with("/o/")
        || route == "/metrics"
        || route == "/livez"
        || route == "/readyz"
        || (status < 300 && is_periodic(route))
    {
        tracing::debug!(http.method = %method, http.route = %route, http.status = status, request.id = %request_id, duration_ms, "request");
    } else {
        tracing::info!(http.method = %method, http.route = %route, http.status = status, request.id = %request_id, duration_ms, "request");
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_timer_routes_are_periodic() {
        assert!(is_periodic("/api/v1/playback/{session_id}/heartbeat"));
        assert!(is_periodic("/hls/{session}/steering.json"));
        assert!(!is_periodic("/api/v1/playback"));
        assert!(!is_periodic("/api/v1/tickets"));
    }

    #[test]
    fn kept_request_metrics_record_into_the_series_of_their_labels() {
        let handle = metrics_handle();
        let route = interned(&String::from("/test/kept-metrics"));
        let (ok, teapot) = (interned("200"), interned("418"));
        for _ in 0..3 {
            request_metrics(route, "GET", ok).0.increment(1);
        }
        request_metrics(route, "GET", teapot).0.increment(1);
        request_metrics(route, "POST", ok).1.record(0.5);
        let text = handle.render();
        let line = |series: &str| {
            text.lines()
                .find(|l| l.starts_with(series))
                .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
                .to_owned()
        };
        let base = "usher_http_requests_total{route=\"/test/kept-metrics\",method=\"GET\"";
        assert!(line(&format!("{base},status=\"200\"}}")).ends_with(" 3"));
        assert!(line(&format!("{base},status=\"418\"}}")).ends_with(" 1"));
        assert!(
            line("usher_http_request_duration_seconds_count{route=\"/test/kept-metrics\",method=\"POST\"}")
                .ends_with(" 1")
        );
    }

    #[test]
    fn labels_are_interned_and_bounded() {
        let a = interned(&String::from("/api/v1/playback"));
        let b = interned(&String::from("/api/v1/playback"));
        assert!(std::ptr::eq(a, b));
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
