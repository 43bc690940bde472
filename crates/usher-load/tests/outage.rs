//! How the viewer run tells failures apart, against a stand-in for Usher whose answers a test scripts: a
//! store outage ridden as the watch page rides it (`expect_outage`: admits told to come back later, heartbeats
//! `degraded`), a session the server ends (lost), a refused admit (a false refusal), and answers with no
//! refusal in them (failed requests), and a run stopped early.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::{Value, json};
use usher_load::setup::Server;
use usher_load::viewers::{self, Arrival, ViewersConfig, ViewersReport};

/// What the stand-in answers.
#[derive(Default)]
struct Script {
    /// The store is unreachable: admits 503 `store_unavailable` (Retry-After 1), heartbeats `degraded`.
    outage: AtomicBool,
    /// Heartbeats of this session answer 410 `session_expired` (the server ended it).
    expire: Mutex<Option<String>>,
    /// Admits answer 403 `ticket_revoked` (a refusal of a valid ticket).
    refuse_admits: AtomicBool,
    /// Heartbeats answer 502 with no problem body (a proxy with nowhere to send them).
    bad_gateway: AtomicBool,
    admits: AtomicU64,
}

type Shared = Arc<Script>;

fn problem(status: StatusCode, code: &str) -> Response {
    (
        status,
        axum::Json(json!({"type": "about:blank", "code": code})),
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

async fn admit(State(s): State<Shared>) -> Response {
    if s.outage.load(Ordering::SeqCst) {
        let mut r = problem(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    if s.refuse_admits.load(Ordering::SeqCst) {
        return problem(StatusCode::FORBIDDEN, "ticket_revoked");
    }
    let n = s.admits.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "session_id": format!("s{n}"),
            "heartbeat_interval_s": 1,
            "playlist_url": format!("/hls/s{n}/master.m3u8"),
            "session_secret": format!("{n:0>22}"),
            "reattached": false,
            "grants": [],
        })),
    )
        .into_response()
}

async fn heartbeat(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    if s.outage.load(Ordering::SeqCst) {
        return axum::Json(json!({"status": "degraded", "heartbeat_interval_s": 1}))
            .into_response();
    }
    if s.bad_gateway.load(Ordering::SeqCst) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    if s.expire.lock().unwrap().as_deref() == Some(id.as_str()) {
        return problem(StatusCode::GONE, "session_expired");
    }
    axum::Json(json!({"status": "ok", "heartbeat_interval_s": 1, "session_secret": "B".repeat(22), "grants": []}))
        .into_response()
}

async fn leave() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

struct StandIn {
    script: Shared,
    server: Server,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start() -> Self {
        let script = Shared::default();
        let app = Router::new()
            .route("/api/v1/shows/{id}", put(put_show))
            .route("/api/v1/tickets/batch", post(register))
            .route("/api/v1/playback", post(admit))
            .route("/api/v1/playback/{id}/heartbeat", post(heartbeat))
            .route("/api/v1/playback/{id}", axum::routing::delete(leave))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("stand-in serves");
        });
        Self {
            script,
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
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(viewers: usize, duration_s: f64) -> ViewersConfig {
    ViewersConfig {
        viewers,
        devices_per_ticket: 1,
        max_devices: 1,
        arrival: Arrival::Ramp(1.0),
        duration_s,
        segments: 0,
        steering_s: 0.0,
        jitter: 0.05,
        connections: 0,
        progress_s: 0.0,
        watch_s: 0.0,
        expect_outage: false,
    }
}

/// Runs `cfg` while `during` scripts the stand-in.
async fn run_with(
    stand_in: &StandIn,
    cfg: ViewersConfig,
    during: impl std::future::Future<Output = ()>,
) -> ViewersReport {
    let (report, ()) = tokio::join!(viewers::run(&stand_in.server, cfg, None), during);
    report.expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_ride_an_outage_and_its_answers_are_no_errors() {
    let s = StandIn::start().await;
    let script = s.script.clone();
    // viewers keep arriving through the outage, from 1.5 s to 4 s into the run
    let cfg = ViewersConfig {
        arrival: Arrival::Ramp(5.0),
        expect_outage: true,
        ..config(20, 3.0)
    };
    let r = run_with(&s, cfg, async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        script.outage.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        script.outage.store(false, Ordering::SeqCst);
    })
    .await;
    assert!(r.passed, "{r:#?}");
    assert_eq!((r.errors, r.failed_requests), (0, 0), "{r:#?}");
    assert_eq!(r.checks.sessions_lost, 0, "{r:#?}");
    let o = &r.outage;
    assert!(o.admits_unavailable > 0, "{r:#?}");
    assert!(o.admits_paused > 0, "{r:#?}");
    assert!(
        o.longest_admit_pause_ms >= 900 && o.longest_admit_pause_ms < 5_000,
        "{r:#?}"
    );
    assert!(o.heartbeats_degraded > 0, "{r:#?}");
    assert!(o.viewers_degraded > 0, "{r:#?}");
    assert_eq!(
        o.viewers_recovered + o.viewers_left_degraded,
        o.viewers_degraded,
        "{r:#?}"
    );
    assert!(o.viewers_recovered > 0, "{r:#?}");
    let first = o.first_admit_unavailable_at_ms.expect("first");
    let last = o.last_admit_unavailable_at_ms.expect("last");
    assert!((1_000..=3_500).contains(&(last - first)), "{r:#?}");
    // every viewer was admitted once, and left at the end
    let admit = r.ops.iter().find(|o| o.op.name() == "admit").unwrap();
    assert_eq!(admit.ok, 20, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_expecting_it_an_outage_fails_the_run() {
    let s = StandIn::start().await;
    let script = s.script.clone();
    let r = run_with(&s, config(5, 2.5), async move {
        tokio::time::sleep(Duration::from_millis(1800)).await;
        script.outage.store(true, Ordering::SeqCst);
    })
    .await;
    assert!(!r.passed, "{r:#?}");
    // a degraded heartbeat is an unexpected answer, labelled 200: a failed request, not a refusal
    assert!(r.failed_requests > 0, "{r:#?}");
    assert_eq!(r.checks.sessions_lost, 0, "{r:#?}");
    assert_eq!(r.outage.heartbeats_degraded, 0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_ends_is_lost_and_a_refused_admit_is_a_false_refusal() {
    let s = StandIn::start().await;
    *s.script.expire.lock().unwrap() = Some("s0".into());
    let script = s.script.clone();
    let r = run_with(&s, config(4, 2.0), async move {
        // the first viewers are in; later ones are refused
        tokio::time::sleep(Duration::from_millis(500)).await;
        script.refuse_admits.store(true, Ordering::SeqCst);
    })
    .await;
    assert!(!r.passed, "{r:#?}");
    let c = &r.checks;
    assert_eq!(c.sessions_lost, 1, "{r:#?}");
    assert!(c.false_admit_refusals >= 1, "{r:#?}");
    assert_eq!(c.false_refusals, c.sessions_lost + c.false_admit_refusals);
    assert_eq!(
        r.failed_requests, 0,
        "refusals are no failed requests: {r:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_gateway_is_a_failed_request_and_the_viewer_plays_on() {
    let s = StandIn::start().await;
    let script = s.script.clone();
    let r = run_with(&s, config(3, 3.0), async move {
        tokio::time::sleep(Duration::from_millis(1600)).await;
        script.bad_gateway.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        script.bad_gateway.store(false, Ordering::SeqCst);
    })
    .await;
    assert!(!r.passed, "{r:#?}");
    assert!(r.failed_requests > 0, "{r:#?}");
    assert_eq!(r.checks.sessions_lost, 0, "{r:#?}");
    let leave = r.ops.iter().find(|o| o.op.name() == "leave").unwrap();
    assert_eq!(leave.ok, 3, "every viewer played to the end: {r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_viewers_come_back_and_a_stop_ends_the_run_early() {
    let s = StandIn::start().await;
    let cfg = ViewersConfig {
        watch_s: 1.0,
        ..config(4, 3600.0)
    };
    let stop = tokio::time::sleep(Duration::from_secs(4));
    let started = std::time::Instant::now();
    let r = viewers::run_until(&s.server, cfg, None, stop)
        .await
        .expect("run");
    assert!(started.elapsed() < Duration::from_secs(15), "{r:#?}");
    assert!(r.stopped_early, "{r:#?}");
    assert!(r.passed, "{r:#?}");
    let ok = |name: &str| {
        r.ops
            .iter()
            .find(|o| o.op.name() == name)
            .map_or(0, |o| o.ok)
    };
    // each viewer watched about a second at a time for about three seconds
    assert!(ok("admit") >= 8, "{r:#?}");
    assert_eq!(ok("admit"), ok("leave"), "{r:#?}");
}
