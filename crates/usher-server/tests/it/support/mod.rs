//! `spawn_app()`: an Usher built in-process on `127.0.0.1:0` with a fresh data directory, API keys, and
//! typed helpers over real HTTP; `shutdown()` stops it and waits for the drain.
//!
//! Tests reach the app through a recording proxy ([`proxy`]) that checks every answer against the API
//! document the app serves ([`api_doc`]): an answer that does not match fails the test at `shutdown()`,
//! or when the `TestApp` is dropped.

mod api_doc;
pub(crate) mod process;
mod proxy;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use usher_core::store::Scope;
use usher_server::service::admin::api_keys::issue_api_key;
use usher_server::settings::{Config, HttpSettings, LogFormat, LogSettings, StoreSettings};
use usher_server::startup::Application;
use usher_server::state::AppState;

pub(crate) struct TestApp {
    /// `http://` and the address of the answer-checking proxy in front of the app.
    pub(crate) base: String,
    /// The app's own address, for what the proxy cannot carry (raw, malformed requests).
    pub(crate) addr: SocketAddr,
    /// The separate `/metrics` address, when `metrics.listen` is set.
    pub(crate) metrics_addr: Option<SocketAddr>,
    pub(crate) admin_key: String,
    pub(crate) tickets_key: String,
    pub(crate) client: Client,
    pub(crate) state: AppState,
    /// The data directory, removed when the app is dropped.
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    record: Arc<proxy::Record>,
    _proxy: proxy::Proxy,
    /// The Redis the app stores in, when it does ([`spawn_app_on`]).
    _redis: Option<usher_testkit::RedisServer>,
}

/// `t` in RFC 3339, as the API writes times.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub(crate) fn media_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../media")
}

pub(crate) fn config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        data_dir: dir.to_owned(),
        media_dir: media_dir(),
        store: StoreSettings::Embedded,
        token_key: SecretString::from("test-token-key-0123456789abcdef0123456789"),
        grant_key: SecretString::from("test-grant-key-0123456789abcdef0123456789"),
        previous_token_key: None,
        previous_grant_key: None,
        key_encryption_key: None,
        http: HttpSettings {
            max_body_bytes: 4 * 1024 * 1024,
            drain_timeout_s: 5,
            ..HttpSettings::default()
        },
        log: LogSettings {
            format: LogFormat::Text,
            level: "warn".into(),
            client_addresses: false,
        },
        trusted_proxies: Vec::new(),
        trusted_proxy_header: Default::default(),
        geoip: Default::default(),
        cdn_probe: Default::default(),
        tv: Default::default(),
        webhooks: Default::default(),
        media_cache: Default::default(),
        rate_limits: Default::default(),
        login: Default::default(),
        audit: Default::default(),
        privacy: Default::default(),
        backup: Default::default(),
        metrics: Default::default(),
        uploads: Default::default(),
        ingest: Default::default(),
    }
}

/// The store a test's app keeps its data in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Backend {
    /// The embedded store (the default).
    Embedded,
    /// A redis-server of its own, started for the test.
    Redis,
}

/// An app on `backend`.
pub(crate) async fn spawn_app_on(backend: Backend) -> TestApp {
    spawn_app_on_with(backend, |_| {}).await
}

/// An app on `backend` whose configuration `tweak` may change first.
pub(crate) async fn spawn_app_on_with(
    backend: Backend,
    tweak: impl FnOnce(&mut Config) + Send + 'static,
) -> TestApp {
    match backend {
        Backend::Embedded => spawn_app_with(tweak).await,
        Backend::Redis => {
            let (redis, port) = usher_testkit::RedisServer::start_tcp().expect("redis-server");
            let mut app = spawn_app_with(move |c| {
                tweak(c);
                c.store = StoreSettings::Redis(usher_server::settings::RedisSettings {
                    url: SecretString::from(format!("redis://127.0.0.1:{port}")),
                    key_prefix: "it:".into(),
                    connect_timeout_ms: 2_000,
                    response_timeout_ms: 5_000,
                    wait_replicas: 0,
                    wait_timeout_ms: 100,
                    sentinel: None,
                });
            })
            .await;
            app._redis = Some(redis);
            app
        }
    }
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An app whose configuration `tweak` may change first.
pub(crate) async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    tweak(&mut cfg);
    let app = Application::build(cfg).await.expect("app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let state = app.state().clone();
    let (_, admin_key) = issue_api_key(&*state.store, &state.hasher, "admin", vec![Scope::Admin])
        .await
        .unwrap();
    let (_, tickets_key) =
        issue_api_key(&*state.store, &state.hasher, "site", vec![Scope::Tickets])
            .await
            .unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc: Value = client
        .get(format!("http://{addr}/api/v1/openapi.json"))
        .send()
        .await
        .and_then(Response::error_for_status)
        .expect("the app serves its API document")
        .json()
        .await
        .expect("the API document is JSON");
    let doc = api_doc::ApiDoc::new(&doc, &catch_all_paths(&state));
    let record = Arc::new(proxy::Record::new(doc));
    let proxy = proxy::Proxy::start(addr, record.clone()).await;
    TestApp {
        base: format!("http://{}", proxy.addr),
        addr,
        metrics_addr,
        admin_key,
        tickets_key,
        client,
        state,
        _dir: dir,
        stop: Some(tx),
        task: Some(task),
        record,
        _proxy: proxy,
        _redis: None,
    }
}

/// The paths (as the API document writes them) whose last parameter takes the rest of the path, read from
/// the router's `Debug` output like `tests/it/openapi.rs` does (`"/o/{grant}/{*path}"`).
fn catch_all_paths(state: &AppState) -> BTreeSet<String> {
    let text = format!("{:?}", usher_server::http::router(state.clone()));
    let paths: BTreeSet<String> = text
        .split('"')
        .filter(|p| p.starts_with('/') && p.contains("{*"))
        .map(|p| p.replace("{*", "{"))
        .collect();
    assert!(
        paths.contains("/o/{grant}/{path}"),
        "could not read the catch-all routes from the router's Debug output (did axum change it?): {paths:?}"
    );
    paths
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the app, waits for the drain, and fails if any answer did not match the API document.
    pub(crate) async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.record.assert_all_matched();
    }

    /// Checks an answer received without the proxy (a raw request on [`TestApp::addr`]) against the API
    /// document, like the proxy checks the others.
    pub(crate) fn check_answer(
        &self,
        method: &str,
        target: &str,
        status: u16,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        self.record.check(&api_doc::Answer {
            method,
            target,
            status,
            content_type,
            body,
        });
    }

    /// `GET path` with `key` as the bearer.
    pub(crate) async fn get_with(&self, path: &str, key: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE path` with `key` as the bearer.
    pub(crate) async fn delete_with(&self, path: &str, key: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn put_show(&self, id: &str, body: Value) -> Response {
        self.client
            .put(self.url(&format!("/api/v1/shows/{id}")))
            .bearer_auth(&self.admin_key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A show open now, with `k` devices and `policy`, and the given heartbeat/lease seconds.
    pub(crate) async fn open_show(&self, id: &str, k: u32, policy: &str) -> Value {
        let now = time::OffsetDateTime::now_utc();
        let fmt = crate::support::rfc3339;
        let res = self
            .put_show(
                id,
                json!({
                    "title": format!("Show {id}"),
                    "starts_at": fmt(now - time::Duration::hours(1)),
                    "ends_at": fmt(now + time::Duration::hours(2)),
                    "stream_path": "demo",
                    "max_devices": k,
                    "policy": policy,
                }),
            )
            .await;
        assert!(res.status().is_success(), "put show: {}", res.status());
        res.json().await.unwrap()
    }

    pub(crate) async fn register(&self, body: Value) -> Response {
        self.client
            .post(self.url("/api/v1/tickets"))
            .bearer_auth(&self.tickets_key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a ticket for `show` and returns (id, token).
    pub(crate) async fn ticket(&self, show: &str) -> (String, String) {
        let res = self.register(json!({"show_id": show})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    pub(crate) async fn admit(&self, token: &str, device: &str) -> Response {
        self.client
            .post(self.url("/api/v1/playback"))
            .header("x-usher-device", device)
            .header("x-usher-device-label", format!("label of {device}"))
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    }

    /// An app's admit presenting the secret of the session it held (a restart of the app re-attaches).
    pub(crate) async fn readmit(&self, token: &str, device: &str, secret: &str) -> Response {
        self.client
            .post(self.url("/api/v1/playback"))
            .header("x-usher-device", device)
            .header("x-usher-device-label", format!("label of {device}"))
            .header("x-usher-session-secret", secret)
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn heartbeat(&self, session: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/playback/{session}/heartbeat")))
            .send()
            .await
            .unwrap()
    }

    /// The player's goodbye (`POST /api/v1/playback/{session}/leave`).
    pub(crate) async fn leave(&self, session: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/playback/{session}/leave")))
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn ticket_status(&self, id: &str) -> Value {
        let res = self
            .client
            .get(self.url(&format!("/api/v1/tickets/{id}")))
            .bearer_auth(&self.tickets_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

impl Drop for TestApp {
    /// A test that does not call `shutdown()` still fails on an answer that did not match (unless it is
    /// failing already).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.record.assert_all_matched();
        }
    }
}

/// Asserts a problem+json answer with `status` and `code`, and returns its body.
pub(crate) async fn assert_problem(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "status; body {body}");
    assert_eq!(
        ctype, "application/problem+json",
        "content type; body {body}"
    );
    assert_eq!(body["code"], code, "code; body {body}");
    assert_eq!(body["status"], status.as_u16());
    body
}
