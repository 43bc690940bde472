//! A recording reverse proxy in front of a test app: it forwards each request unchanged (method, target,
//! headers with cookies, body) and gives back the app's answer unchanged (status, headers, body), after
//! checking the answer against the API document ([`super::api_doc`]). What does not match is kept in a
//! [`Record`], which `TestApp` turns into a test failure; so is anything the proxy itself could not do.
//!
//! It also keeps each session's secret as a well-behaved app does ([`Secrets`]): it notes the secret an
//! admit or heartbeat answers, and adds it as `X-Usher-Session-Secret` to a later request about that
//! session that carries no secret of its own (no header, no `secret=` in the URL, no `usher_seat`
//! cookie), so tests about other things need not handle secrets. Tests of the secrets themselves talk to
//! the app directly (`TestApp::direct`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::api_doc::{Answer, ApiDoc};

/// What the checks found.
pub(crate) struct Record {
    doc: ApiDoc,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    answers: usize,
    json: usize,
    failures: Vec<String>,
}

impl Record {
    pub(crate) fn new(doc: ApiDoc) -> Self {
        Self {
            doc,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Checks one answer and keeps a failure. With `USHER_TEST_ANSWER_LOG` set to a file, one line per
    /// answer is appended to it (which operations and statuses the tests reach).
    pub(crate) fn check(&self, answer: &Answer<'_>) {
        let checked = self.doc.check(answer);
        if let Some(path) = std::env::var_os("USHER_TEST_ANSWER_LOG") {
            // the document beside the log, once, for scripts/check-api-codes.py
            let doc_path =
                std::path::PathBuf::from(format!("{}.openapi.json", path.to_string_lossy()));
            if !doc_path.exists() {
                let tmp = doc_path.with_extension(format!("{}.tmp", std::process::id()));
                std::fs::write(&tmp, self.doc.served().to_string())
                    .expect("the document beside USHER_TEST_ANSWER_LOG writes");
                std::fs::rename(&tmp, &doc_path).expect("the document moves into place");
            }
            let code = answer
                .content_type
                .filter(|c| c.starts_with("application/problem+json"))
                .and_then(|_| serde_json::from_slice::<serde_json::Value>(answer.body).ok())
                .and_then(|v| v["code"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "-".into());
            let line = format!(
                "{}\t{}\t{}\t{}\t{code}\n",
                checked.operation,
                answer.status,
                answer.content_type.unwrap_or("-"),
                if checked.result.is_ok() { "ok" } else { "FAIL" }
            );
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("USHER_TEST_ANSWER_LOG opens");
            file.write_all(line.as_bytes())
                .expect("USHER_TEST_ANSWER_LOG writes");
        }
        let mut seen = self.seen.lock().unwrap();
        seen.answers += 1;
        seen.json += usize::from(checked.json);
        if let Err(e) = checked.result {
            seen.failures.push(format!(
                "{} (request {} {}) answered {}: {e}",
                checked.operation, answer.method, answer.target, answer.status
            ));
        }
    }

    /// A failure of the proxy itself.
    fn fail(&self, what: String) {
        self.seen.lock().unwrap().failures.push(what);
    }

    /// Panics with every failure so far (once: they are taken).
    pub(crate) fn assert_all_matched(&self) {
        let (failures, answers, json) = {
            let mut seen = self.seen.lock().unwrap();
            (std::mem::take(&mut seen.failures), seen.answers, seen.json)
        };
        assert!(
            failures.is_empty(),
            "{} of {answers} answers ({json} of them JSON) do not match the API document \
             (GET /api/v1/openapi.json):\n  - {}",
            failures.len(),
            failures.join("\n  - ")
        );
    }
}

/// The proxy, stopped when dropped.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Forward {
    upstream: SocketAddr,
    client: reqwest::Client,
    record: Arc<Record>,
    secrets: Secrets,
}

/// The latest secret of each session the proxy saw answered.
#[derive(Default)]
struct Secrets(Mutex<std::collections::HashMap<String, String>>);

impl Secrets {
    /// The session a request is about: `/api/v1/playback/{id}…` or `/hls/{id}/…`.
    fn session_of(path: &str) -> Option<&str> {
        let rest = path
            .strip_prefix("/api/v1/playback/")
            .or_else(|| path.strip_prefix("/hls/"))?;
        Some(rest.split(['/', '?']).next().unwrap_or(rest)).filter(|s| !s.is_empty())
    }

    fn carries_secret(target: &str, headers: &HeaderMap) -> bool {
        headers.contains_key("x-usher-session-secret")
            || target
                .split_once('?')
                .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("secret=")))
            || headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("usher_seat="))
    }

    fn add_to(&self, target: &str, headers: &mut HeaderMap) {
        if Self::carries_secret(target, headers) {
            return;
        }
        let Some(sid) = Self::session_of(target) else {
            return;
        };
        if let Some(secret) = self.0.lock().unwrap().get(sid)
            && let Ok(v) = secret.parse()
        {
            headers.insert("x-usher-session-secret", v);
        }
    }

    fn note(&self, target: &str, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return;
        };
        let Some(secret) = v["session_secret"].as_str() else {
            return;
        };
        let sid = match v["session_id"].as_str() {
            Some(sid) => sid,
            None => match Self::session_of(target) {
                Some(sid) => sid,
                None => return,
            },
        };
        self.0
            .lock()
            .unwrap()
            .insert(sid.to_owned(), secret.to_owned());
    }
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr, record: Arc<Record>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the answer-checking proxy binds");
        let addr = listener.local_addr().unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .expect("the proxy's client");
        let forward = Arc::new(Forward {
            upstream,
            client,
            record,
            secrets: Secrets::default(),
        });
        let router = Router::new().fallback(forward_one).with_state(forward);
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the answer-checking proxy serves");
        });
        Self { addr, task }
    }
}

/// Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1), and the length,
/// which the proxy sets for the body it sends.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

async fn forward_one(State(fw): State<Arc<Forward>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let failed = |what: String| {
        let what = format!("proxy: {} {target}: {what}", parts.method);
        fw.record.fail(what.clone());
        let mut res = Response::new(Body::from(what));
        *res.status_mut() = StatusCode::BAD_GATEWAY;
        res
    };
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return failed(format!("reading the request body: {e}")),
    };
    let had_body = !body.is_empty()
        || parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH);
    fw.secrets.add_to(&target, &mut headers);
    let mut upstream = fw
        .client
        .request(
            parts.method.clone(),
            format!("http://{}{target}", fw.upstream),
        )
        .headers(headers);
    if had_body {
        upstream = upstream.body(body);
    }
    let res = match upstream.send().await {
        Ok(r) => r,
        Err(e) => return failed(format!("forwarding: {e:?}")),
    };
    let status = res.status();
    let mut headers = res.headers().clone();
    let body: Bytes = match res.bytes().await {
        Ok(b) => b,
        Err(e) => return failed(format!("reading the answer's body: {e:?}")),
    };
    fw.record.check(&Answer {
        method: parts.method.as_str(),
        target: &target,
        status: status.as_u16(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        body: &body,
    });
    if status.is_success() {
        fw.secrets.note(&target, &body);
    }
    strip_hop_by_hop(&mut headers);
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}
