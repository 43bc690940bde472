//! The tool as a client of session secrets, against a strict stand-in for Usher: the stand-in hands out
//! a fresh secret at each admit and heartbeat and refuses any request about a session that does not send
//! the newest one in `X-Usher-Session-Secret` — stricter than Usher, which takes the previous one once
//! more after a lost answer, so that a tool which stops sending its secret, or keeps sending an old one
//! (Usher would take that for a retry until a copy shows up), fails here at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use usher_load::saturate::{self, Load, SaturateConfig};
use usher_load::setup::Server;
use usher_load::viewers::{self, Arrival, ViewersConfig};

#[derive(Default)]
struct Seen {
    /// Each session's newest secret.
    current: HashMap<String, String>,
    issued: u64,
    /// Requests about a session that sent its newest secret, by kind.
    checked: BTreeMap<&'static str, u64>,
    /// Requests about a session that did not.
    refused: Vec<String>,
    /// Answer every leave 500 with a problem body, as a failing server would.
    fail_leaves: bool,
}

type Shared = Arc<Mutex<Seen>>;

impl Seen {
    fn fresh(&mut self) -> String {
        self.issued += 1;
        format!("{:0>22}", self.issued)
    }

    /// Whether `headers` carry `session`'s newest secret; counts the request either way.
    fn check(&mut self, kind: &'static str, session: &str, headers: &HeaderMap) -> bool {
        let sent = headers
            .get("x-usher-session-secret")
            .and_then(|v| v.to_str().ok());
        let ok = sent.is_some() && self.current.get(session).map(String::as_str) == sent;
        if ok {
            *self.checked.entry(kind).or_default() += 1;
        } else {
            self.refused
                .push(format!("{kind} of {session} sent {sent:?}"));
        }
        ok
    }
}

fn cloned() -> Response {
    (
        StatusCode::CONFLICT,
        axum::Json(json!({"type": "about:blank", "code": "session_cloned"})),
    )
        .into_response()
}

async fn put_show() -> Response {
    axum::Json(json!({})).into_response()
}

async fn register(axum::Json(body): axum::Json<Value>) -> Response {
    let n = body["tickets"].as_array().map_or(0, Vec::len);
    axum::Json(json!({"created": n, "existing": 0, "failed": 0})).into_response()
}

async fn admit(State(seen): State<Shared>) -> Response {
    let mut seen = seen.lock().unwrap();
    let id = format!("s{}", seen.current.len());
    let secret = seen.fresh();
    seen.current.insert(id.clone(), secret.clone());
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "session_id": id,
            "heartbeat_interval_s": 1,
            "playlist_url": format!("/hls/{id}/master.m3u8?secret={secret}"),
            "session_secret": secret,
            "reattached": false,
            "grants": [],
        })),
    )
        .into_response()
}

async fn heartbeat(
    State(seen): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut seen = seen.lock().unwrap();
    if !seen.check("heartbeat", &id, &headers) {
        return cloned();
    }
    let next = seen.fresh();
    seen.current.insert(id, next.clone());
    axum::Json(
        json!({"status": "ok", "heartbeat_interval_s": 1, "session_secret": next, "grants": []}),
    )
    .into_response()
}

async fn leave(State(seen): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mut seen = seen.lock().unwrap();
    if seen.fail_leaves {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"type": "about:blank", "code": "internal"})),
        )
            .into_response();
    }
    if !seen.check("leave", &id, &headers) {
        return cloned();
    }
    seen.current.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

async fn steering(
    State(seen): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    // a reload with the secret in the header only checks: no new secret
    if !seen.lock().unwrap().check("steering", &id, &headers) {
        return cloned();
    }
    axum::Json(json!({"VERSION": 1, "TTL": 1, "RELOAD-URI": format!("/hls/{id}/steering.json"), "PATHWAY-PRIORITY": ["origin"]}))
        .into_response()
}

struct Strict {
    seen: Shared,
    server: Server,
    task: tokio::task::JoinHandle<()>,
}

impl Strict {
    async fn start() -> Self {
        Self::start_with(Seen::default()).await
    }

    async fn start_with(seen: Seen) -> Self {
        let seen = Shared::new(Mutex::new(seen));
        let app = Router::new()
            .route("/api/v1/shows/{id}", put(put_show))
            .route("/api/v1/tickets/batch", post(register))
            .route("/api/v1/playback", post(admit))
            .route("/api/v1/playback/{id}/heartbeat", post(heartbeat))
            .route("/api/v1/playback/{id}", axum::routing::delete(leave))
            .route("/hls/{id}/steering.json", get(steering))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in serves");
        });
        Self {
            seen,
            server: Server {
                base_url: format!("http://{addr}"),
                tickets_key: "tickets".into(),
                admin_key: Some("admin".into()),
                show_id: None,
                heartbeat_s: Some(1),
                stream_path: "demo".into(),
                encryption: "none".into(),
                timeout: Duration::from_secs(10),
            },
            task,
        }
    }

    fn checked(&self, kind: &str) -> u64 {
        self.seen
            .lock()
            .unwrap()
            .checked
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    fn refused(&self) -> Vec<String> {
        self.seen.lock().unwrap().refused.clone()
    }
}

impl Drop for Strict {
    /// Stops the stand-in, also when a test fails before its end.
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_heartbeats_send_and_rotate_each_sessions_secret() {
    let strict = Strict::start().await;
    let cfg = SaturateConfig {
        load: Load::Heartbeat,
        concurrency: 4,
        duration_s: 0.5,
        warmup_s: 0.1,
    };
    let r = saturate::run(Some(&strict.server), cfg, None)
        .await
        .expect("run");
    assert_eq!(strict.refused(), Vec::<String>::new());
    assert_eq!(r.errors, 0, "{r:#?}");
    // every worker heartbeats many times on its one session: each one sent the newest secret
    assert!(strict.checked("heartbeat") >= 40, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_send_the_newest_secret_with_heartbeats_steering_reloads_and_leaves() {
    let strict = Strict::start().await;
    let cfg = ViewersConfig {
        viewers: 10,
        devices_per_ticket: 1,
        max_devices: 1,
        arrival: Arrival::DoorsOpen(0.3),
        duration_s: 2.2,
        segments: 0,
        steering_s: 0.4,
        jitter: 0.05,
        connections: 0,
        progress_s: 0.0,
        watch_s: 0.0,
        expect_outage: false,
    };
    let report = viewers::run(&strict.server, cfg, None).await.expect("run");
    assert_eq!(strict.refused(), Vec::<String>::new());
    assert!(report.passed, "{report:#?}");
    // at least two heartbeats each, so each viewer adopted a heartbeat's secret before the next call
    assert!(strict.checked("heartbeat") >= 20, "{report:#?}");
    assert!(strict.checked("steering") >= 20, "{report:#?}");
    assert_eq!(strict.checked("leave"), 10, "{report:#?}");
}

/// A server error answering the leaves of a shared ticket's devices is an error of the run, not one of
/// the refusals such devices may expect (`session_unknown`, `session_cloned`): before, any problem body
/// counted as an expected refusal, so a run could pass with every leave failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_leave_of_a_shared_ticket_fails_the_run() {
    let strict = Strict::start_with(Seen {
        fail_leaves: true,
        ..Seen::default()
    })
    .await;
    let cfg = ViewersConfig {
        viewers: 4,
        devices_per_ticket: 2,
        max_devices: 2,
        arrival: Arrival::DoorsOpen(0.2),
        duration_s: 1.5,
        segments: 0,
        steering_s: 0.0,
        jitter: 0.05,
        connections: 0,
        progress_s: 0.0,
        watch_s: 0.0,
        expect_outage: false,
    };
    let report = viewers::run(&strict.server, cfg, None).await.expect("run");
    assert!(!report.passed, "{report:#?}");
    let leave = report
        .ops
        .iter()
        .find(|o| o.op == usher_load::stats::Op::Leave)
        .expect("leaves were made");
    // 4 viewers are 4 devices (2 tickets of 2): each leave failed, and each counts
    assert_eq!(
        leave.error_kinds.get("500 internal"),
        Some(&4),
        "{report:#?}"
    );
}
