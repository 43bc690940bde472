//! Every parser of hostile input, fed random bytes and the committed corpus: none may panic, and what a
//! parser accepts must round-trip or keep its invariant.

use std::net::IpAddr;
use std::time::Duration;

use usher_cdn::playlist::{Pathway, personalize};
use usher_core::clock::UnixMs;
use usher_core::grant::{Grant, GrantSigner};
use usher_core::ids::{DeviceId, SessionId, TicketToken};
use usher_core::media_path::MediaPath;
use usher_core::session_secret::SessionSecret;
use usher_geo::proxy::{ForwardedHeader, TrustedProxies};

/// How long each target draws random inputs (`USHER_FUZZ_SECONDS`, default 2).
fn budget() -> Duration {
    Duration::from_secs(
        std::env::var("USHER_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2),
    )
}

/// Runs `target` on every file of the committed corpus (`tests/corpus/<name>/`), then on random inputs
/// for the time budget.
fn fuzz(name: &str, max_len: usize, target: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // a failure names its file in the test's output
        eprintln!("corpus: {}", path.display());
        target(&bytes);
        seeds += 1;
    }
    assert!(seeds > 0, "no corpus in {}", dir.display());
    bolero::check!()
        .with_test_time(budget())
        .with_max_len(max_len)
        .for_each(|bytes: &[u8]| target(bytes));
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Ticket tokens, device ids, session ids and session secrets: parsed or refused, and what is accepted
/// prints back as given.
#[test]
fn ids() {
    fuzz("ids", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        if let Ok(t) = TicketToken::parse(&s) {
            assert_eq!(t.expose(), s);
        }
        if let Ok(d) = DeviceId::parse(&s) {
            assert_eq!(d.to_string(), s);
        }
        if let Ok(id) = SessionId::parse(&s) {
            assert_eq!(id.to_string(), s);
        }
        if let Some(secret) = SessionSecret::parse(&s) {
            assert_eq!(secret.expose(), s);
        }
    });
}

/// Grant texts from anywhere: refused or verified, never a panic; and a grant signed from any fields
/// verifies to the same grant.
#[test]
fn grants() {
    let signer = GrantSigner::new(b"fuzz-grant-key-0123456789abcdef!");
    fuzz("grants", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        let _ = signer.verify(&s, UnixMs(0));
        if let Ok(g) = signer.verify(&s, UnixMs(0)) {
            let _ = g.covers("demo/360p/seg_001.ts");
        }
        // the prefix as the sign side would take it: a relative folder
        if let (Ok(path), Some(first)) = (MediaPath::parse(&s), s.split('/').next()) {
            let _ = path;
            let grant = Grant {
                session: SessionId::generate(),
                expires_at: UnixMs(4_000_000_000_000),
                prefix: format!("{first}/"),
                client: None,
            };
            let again = signer
                .verify(&signer.sign(&grant), UnixMs(0))
                .expect("a signed grant verifies");
            assert_eq!(again, grant);
        }
    });
}

/// Media paths: what is accepted stays inside the media folder.
#[test]
fn media_paths() {
    fuzz("media_paths", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        if MediaPath::parse(&s).is_ok() {
            assert!(!s.starts_with('/') && !s.contains('\\'), "{s:?}");
            assert!(
                s.split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
                "{s:?}"
            );
        }
    });
}

/// `Forwarded` and `X-Forwarded-For` chains from a trusted proxy: any header yields an address without a
/// panic, and a request without the header is the peer's.
#[test]
fn forwarded_chains() {
    let proxies = |header| {
        TrustedProxies::new(
            vec![
                "127.0.0.0/8".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ],
            header,
        )
    };
    let (fwd, xff) = (
        proxies(ForwardedHeader::Forwarded),
        proxies(ForwardedHeader::XForwardedFor),
    );
    let peer: IpAddr = "127.0.0.1".parse().unwrap();
    fuzz("forwarded_chains", 4096, |bytes: &[u8]| {
        let s = text(bytes);
        let values: Vec<&str> = s.split('\n').collect();
        for p in [&fwd, &xff] {
            let _ = p.client(peer, values.iter().copied());
            assert_eq!(p.client(peer, std::iter::empty()), peer);
        }
    });
}

struct Edge;

impl Pathway for Edge {
    fn id(&self) -> &str {
        "a"
    }

    fn sign(&self, uri: &str) -> Option<String> {
        (!uri.contains("nosign")).then(|| format!("https://edge.example/x/{uri}?sig=1"))
    }
}

/// Master playlists of any shape: personalized without a panic, and the answer is a playlist.
#[test]
fn playlists() {
    fuzz("playlists", 64 * 1024, |bytes: &[u8]| {
        let master = text(bytes);
        let out = personalize(&master, &[Edge, Edge], "a", "/hls/s/steering.json");
        if master.starts_with("#EXTM3U") {
            assert!(out.starts_with("#EXTM3U"), "{out:?}");
        }
    });
}

/// Configuration files of any content: read and checked into a clear error or a configuration, never a
/// panic.
#[test]
fn config_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usher.toml");
    fuzz("config_files", 4096, |bytes: &[u8]| {
        std::fs::write(&file, bytes).unwrap();
        if let Ok(settings) = usher_server::settings::Settings::load(Some(&file)) {
            let _ = settings.validate();
        }
    });
}

/// What each problem-body input is sent to: method, path (`{}` takes a path segment drawn from the input)
/// and the API key it carries.
const ROUTES: &[(&str, &str, Key)] = &[
    ("POST", "/api/v1/tickets", Key::Tickets),
    ("POST", "/api/v1/tickets/batch", Key::Tickets),
    ("POST", "/api/v1/tickets/{}/revoke", Key::Tickets),
    ("GET", "/api/v1/tickets/{}", Key::Tickets),
    ("POST", "/api/v1/playback", Key::None),
    ("POST", "/api/v1/playback/{}/heartbeat", Key::None),
    ("POST", "/api/v1/playback/{}/leave", Key::None),
    ("DELETE", "/api/v1/playback/{}", Key::None),
    ("PUT", "/api/v1/shows/{}", Key::Admin),
    ("PUT", "/api/v1/shows/{}/published", Key::Admin),
    ("PUT", "/api/v1/cdns/{}", Key::Admin),
    ("PATCH", "/api/v1/cdns/{}", Key::Admin),
    ("POST", "/api/v1/cdns/{}/sign", Key::Admin),
    ("POST", "/api/v1/api-keys", Key::Admin),
    ("POST", "/api/v1/admin-users", Key::Admin),
    ("PATCH", "/api/v1/admin-users/{}", Key::Admin),
    ("GET", "/hls/{}/steering.json", Key::None),
    ("GET", "/watch/{}", Key::None),
];

#[derive(Clone, Copy)]
enum Key {
    None,
    Tickets,
    Admin,
}

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
];

/// Problem bodies: any body, content type and path segment sent to the routes that read them gets a
/// success or a 4xx whose body is an RFC 9457 problem naming its own status and a documented code; never
/// a 5xx, never a panic. The input's first byte picks the route, the second the content type, the third
/// how many of the following bytes form the path segment; the rest is the body.
#[test]
fn problem_bodies() {
    use std::panic::AssertUnwindSafe;

    use axum::body::Body;
    use tower::ServiceExt;
    use usher_server::service::error::Code;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, admin, tickets) = rt.block_on(async {
        let file = dir.path().join("usher.toml");
        std::fs::write(
            &file,
            format!(
                "listen = \"127.0.0.1:0\"\ndata_dir = \"{dir}\"\nmedia_dir = \"{dir}\"\n\
                 [secrets]\ntoken_key = \"fuzz-token-key-0123456789abcdef0123\"\n\
                 grant_key = \"fuzz-grant-key-0123456789abcdef0123\"\n",
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        let mut config = usher_server::settings::Settings::load(Some(&file))
            .unwrap()
            .validate()
            .unwrap();
        // every input reaches its handler: the per-key budget would answer most of them 429 otherwise
        config.rate_limits.api_key_requests = usher_server::settings::Limit::OFF;
        let app = usher_server::startup::Application::build(config)
            .await
            .unwrap();
        let state = app.state().clone();
        let issue = |name: &'static str, scope| {
            let state = state.clone();
            async move {
                usher_server::service::admin::api_keys::issue_api_key(
                    &*state.store,
                    &state.hasher,
                    name,
                    vec![scope],
                )
                .await
                .unwrap()
                .1
            }
        };
        let admin = issue("admin", usher_core::store::Scope::Admin).await;
        let tickets = issue("site", usher_core::store::Scope::Tickets).await;
        (usher_server::http::router(state), admin, tickets)
    });
    let ctx = AssertUnwindSafe((rt, router, admin, tickets));
    fuzz("problem_bodies", 8192, move |bytes: &[u8]| {
        let (rt, router, admin, tickets) = &*ctx;
        let [route, content_type, segment_len, rest @ ..] = bytes else {
            return;
        };
        let (method, path, key) = ROUTES[usize::from(*route) % ROUTES.len()];
        let content_type = CONTENT_TYPES[usize::from(*content_type) % CONTENT_TYPES.len()];
        let split = usize::from(*segment_len).min(rest.len());
        let (segment, body) = rest.split_at(split);
        let segment: String = url_escape(segment);
        let uri = path.replace("{}", &segment);
        let mut req = axum::http::Request::builder().method(method).uri(&uri);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        match key {
            Key::None => {}
            Key::Tickets => req = req.header("authorization", format!("Bearer {tickets}")),
            Key::Admin => req = req.header("authorization", format!("Bearer {admin}")),
        }
        let Ok(mut req) = req.body(Body::from(body.to_vec())) else {
            return;
        };
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40_000,
            ))));
        let (status, content_type, body) = rt.block_on(async {
            let res = router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let content_type = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, content_type, body)
        });
        assert!(
            !status.is_server_error(),
            "{method} {uri} ({content_type}): {status} {}",
            String::from_utf8_lossy(&body)
        );
        // the watch link's refusals are pages for people; every other refusal is a problem
        if status.is_client_error() && !uri.starts_with("/watch/") {
            assert!(
                content_type.starts_with("application/problem+json"),
                "{method} {uri}: {status} as {content_type}"
            );
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], status.as_u16(), "{problem}");
            let code = problem["code"].as_str().unwrap_or_default();
            assert!(Code::NAMES.contains(&code), "undocumented code: {problem}");
            assert!(problem["title"].is_string(), "{problem}");
        }
    });
}

/// A path segment of any bytes, percent-encoded where a URI needs it.
fn url_escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
