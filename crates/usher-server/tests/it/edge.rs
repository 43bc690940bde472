//! The edge of the server (issue 15): security headers on every kind of answer, the public routes' small
//! JSON-only bodies, the rate limits that make guessing useless without bothering viewers, and the audit
//! CSV's formula guard. (Connections, timeouts and descriptor limits on the real binary:
//! `tests/it/connections.rs`.)
//!
//! Client addresses other than the proxy's are sent as `X-Forwarded-For` from the recording proxy, which
//! the apps here trust (`trusted_proxies = ["127.0.0.1"]`), as a load balancer in front of Usher would.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use usher_core::admin::{Actor, AuditEntry};
use usher_core::session_secret::SessionSecret;
use usher_server::settings::{Config, Limit};

use crate::support::{TestApp, assert_problem, spawn_app_with};

const VIEWER: &str = "198.51.100.9";
const GUESSER: &str = "203.0.113.7";

fn trust_the_proxy(c: &mut Config) {
    c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// A random token of the form tickets have, that no ticket has.
fn guess() -> String {
    SessionSecret::generate().expose().to_owned()
}

async fn admit_from(app: &TestApp, from: &str, token: &str, device: &str) -> Response {
    app.client
        .post(app.url("/api/v1/playback"))
        .header("x-forwarded-for", from)
        .header("x-usher-device", device)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
}

async fn watch_link_from(app: &TestApp, from: &str, token: &str) -> Response {
    app.client
        .get(app.url(&format!("/watch/{token}")))
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

fn retry_after(res: &Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After on {}", res.status()))
}

// ---------------------------------------------------------------------------------------------------------
// Security headers
// ---------------------------------------------------------------------------------------------------------

/// Every kind of answer says `nosniff`, carries HSTS behind an https `public_url`, and every page that
/// forbids framing in its CSP says `X-Frame-Options: DENY` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers() {
    let app = spawn_app_with(|c| c.public_url = Some("https://watch.example.com".into())).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-aaaa0001").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let admitted: Value = res.json().await.unwrap();
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    let playlist = admitted["playlist_url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://watch.example.com")
        .to_owned();
    let master = app
        .client
        .get(app.url(&playlist))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let variant = master
        .lines()
        .map(|l| l.trim_start_matches("https://watch.example.com"))
        .find(|l| l.starts_with("/o/"))
        .unwrap_or_else(|| panic!("a variant on the origin in {master}"))
        .to_owned();
    let segment = {
        let media = app
            .client
            .get(app.url(&variant))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let seg = media.lines().find(|l| l.ends_with(".ts")).unwrap();
        format!("{}/{seg}", variant.rsplit_once('/').unwrap().0)
    };
    let ticket_cookie = format!("usher_ticket={token}");
    // (what, method, path, cookie, whether it is a page that must forbid framing)
    let answers: Vec<(&str, &str, String, Option<&str>, bool)> = vec![
        ("JSON", "GET", "/livez".into(), None, false),
        ("problem", "GET", "/no/such/route".into(), None, false),
        (
            "API document",
            "GET",
            "/api/v1/openapi.json".into(),
            None,
            false,
        ),
        ("metrics", "GET", "/metrics".into(), None, false),
        ("script", "GET", "/assets/watch.js".into(), None, false),
        ("master playlist", "GET", playlist.clone(), None, false),
        ("media playlist", "GET", variant.clone(), None, false),
        ("media segment", "GET", segment, None, false),
        (
            "heartbeat",
            "POST",
            format!("/api/v1/playback/{session}/heartbeat"),
            None,
            false,
        ),
        ("watch link", "GET", format!("/watch/{token}"), None, false),
        (
            "watch page",
            "GET",
            "/watch".into(),
            Some(ticket_cookie.as_str()),
            true,
        ),
        ("refusal page", "GET", "/watch".into(), None, true),
        (
            "API reference page",
            "GET",
            "/api/v1/docs".into(),
            None,
            true,
        ),
        (
            "console login page",
            "GET",
            "/admin/login".into(),
            None,
            true,
        ),
    ];
    for (what, method, path, cookie, page) in answers {
        let mut req = app.client.request(method.parse().unwrap(), app.url(&path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        let h = res.headers();
        let status = res.status();
        assert_eq!(
            h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
            Some("nosniff"),
            "{what} ({status}) says nosniff"
        );
        assert_eq!(
            h.get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000"),
            "{what} ({status}) carries HSTS behind https"
        );
        if page {
            let csp = h
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(
                csp.contains("frame-ancestors 'none'"),
                "{what} ({status}): {csp}"
            );
            assert_eq!(
                h.get("x-frame-options").map(|v| v.to_str().unwrap()),
                Some("DENY"),
                "{what} ({status}) says X-Frame-Options next to its CSP"
            );
        }
    }
    app.shutdown().await;

    // plain http: no HSTS (browsers ignore it there, and it must not pin a site that has no https)
    let app = spawn_app_with(|_| {}).await;
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// Body limits and content types
// ---------------------------------------------------------------------------------------------------------

/// An answer read off a raw connection: status, headers (lower-case names) and body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn code(&self) -> String {
        serde_json::from_slice::<Value>(&self.body).unwrap_or(Value::Null)["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// Sends `head` (and `body`) on a new connection to the app itself and reads one answer, within `limit`.
async fn raw(app: &TestApp, head: &str, body: &[u8], limit: Duration) -> Raw {
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        // the server may answer and close before taking all of it
        let _ = tcp.write_all(body).await;
    }
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = tcp.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?} to {head:?}"));
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer head");
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

/// The public routes take a few KiB of JSON: a 4 MiB `text/plain` admit is refused from its head alone
/// (the test sends no body at all and still gets its answer), and so is any larger body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_take_small_json_bodies_only() {
    let app = spawn_app_with(|_| {}).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let quick = Duration::from_secs(2);

    // 4 MiB of text/plain, declared and never sent: the answer cannot depend on reading it
    let res = raw(
        &app,
        "POST /api/v1/playback HTTP/1.1\r\nHost: usher\r\nContent-Type: text/plain\r\nContent-Length: 4194304\r\n\r\n",
        b"",
        quick,
    )
    .await;
    assert!(
        matches!(res.status, 413 | 415),
        "status {} {:?}",
        res.status,
        String::from_utf8_lossy(&res.body)
    );
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    assert!(matches!(
        res.code().as_str(),
        "payload_too_large" | "unsupported_media_type"
    ));
    app.check_answer(
        "POST",
        "/api/v1/playback",
        res.status,
        res.header("content-type"),
        &res.body,
    );

    // the same as JSON, with the real token at its start: still refused unread
    let res = raw(
        &app,
        "POST /api/v1/playback HTTP/1.1\r\nHost: usher\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n",
        format!("{{\"token\": \"{token}\", \"pad\": \"").as_bytes(),
        quick,
    )
    .await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (413, "payload_too_large")
    );

    // a body without a length is cut at the limit as it is read
    let big = format!("{{\"token\": \"{}\"}}", "a".repeat(8 * 1024));
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let res = raw(
        &app,
        "POST /api/v1/playback HTTP/1.1\r\nHost: usher\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked.as_bytes(),
        quick,
    )
    .await;
    assert_eq!(
        (res.status, res.code().as_str()),
        (413, "payload_too_large")
    );

    // a small body that is not JSON: 415, before it is parsed
    let text = format!("{{\"token\": \"{token}\"}}");
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("content-type", "text/plain")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // a heartbeat or a leave with a large body
    for (method, path) in [
        (
            "POST",
            "/api/v1/playback/s_00000000000000000000000000000000/heartbeat",
        ),
        (
            "DELETE",
            "/api/v1/playback/s_00000000000000000000000000000000",
        ),
        (
            "POST",
            "/api/v1/playback/s_00000000000000000000000000000000/leave",
        ),
    ] {
        let res = raw(
            &app,
            &format!("{method} {path} HTTP/1.1\r\nHost: usher\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n"),
            b"",
            quick,
        )
        .await;
        assert_eq!(
            (res.status, res.code().as_str()),
            (413, "payload_too_large"),
            "{method} {path}"
        );
        app.check_answer(
            method,
            path,
            res.status,
            res.header("content-type"),
            &res.body,
        );
    }

    // what a viewer sends still plays: the page's `{}` with its cookie, an app's token, an empty body
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("cookie", format!("usher_ticket={token}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app.admit(&token, "device-bbbb0002").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("cookie", format!("usher_ticket={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // routes behind a key keep their larger limit (a batch of 2,000 tickets is about 100 KB)
    let batch =
        json!({"tickets": (0..2000).map(|_| json!({"show_id": "gig"})).collect::<Vec<_>>()});
    let res = app
        .client
        .post(app.url("/api/v1/tickets/batch"))
        .bearer_auth(&app.tickets_key)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------------------------

/// A guessing loop on the watch link and on admit gets 429 with `Retry-After` once its address spent its
/// failed lookups; a viewer at another address (IPv6: another /64) is not affected, and lookups that find
/// their ticket never spend anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_is_cut_off_per_address_and_viewers_elsewhere_play() {
    const BURST: u32 = 5;
    let app = spawn_app_with(|c| {
        trust_the_proxy(c);
        c.rate_limits.ticket_lookup_failures = Limit::new(BURST, 1);
    })
    .await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;

    // found tickets cost nothing: far more lookups than the budget, from the guesser's address too
    for i in 0..(4 * BURST) {
        let res = admit_from(&app, GUESSER, &token, &format!("device-{i:08}")).await;
        assert_eq!(res.status(), StatusCode::CREATED, "admit {i}");
    }

    // the guessing loop: the budget's worth of refusal pages, then 429
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..(BURST + 3) {
        answers.push(watch_link_from(&app, GUESSER, &guess()).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let expected: Vec<u16> = (0..BURST + 3)
        .map(|i| if i < BURST { 404 } else { 429 })
        .collect();
    assert_eq!(statuses, expected, "guesses on the watch link");
    let last = answers.pop().unwrap();
    let wait = retry_after(&last);
    assert!(
        (1..=60).contains(&wait),
        "Retry-After {wait} (one guess a minute)"
    );
    assert!(
        last.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "the watch link answers with its page"
    );
    assert!(
        last.headers().get("set-cookie").is_none(),
        "no ticket cookie for a refused guess"
    );

    // admit shares the budget: unknown and even the real token get 429 without a lookup
    let res = admit_from(&app, GUESSER, &guess(), "device-guess001").await;
    let wait = retry_after(&res);
    let body = assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(body["retry_after_s"], wait);
    let res = admit_from(&app, GUESSER, &token, "device-guess002").await;
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // a viewer elsewhere: their link, their page, their admit, even their own typo
    let res = watch_link_from(&app, VIEWER, &token).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = admit_from(&app, VIEWER, &token, "device-viewer01").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = watch_link_from(&app, VIEWER, &guess()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // IPv6 addresses count by their /64
    for i in 0..BURST {
        let res = watch_link_from(&app, &format!("2001:db8:1:2::{:x}", i + 1), &guess()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "guess {i} in the /64");
    }
    let res = watch_link_from(&app, "2001:db8:1:2:ffff::1", &guess()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "same /64");
    let res = watch_link_from(&app, "2001:db8:1:3::1", &token).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "another /64");

    // the refusals are counted per route
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for route in ["/watch/{token}", "/api/v1/playback"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("usher_rate_limited_total")
                    && l.contains(&format!("route=\"{route}\""))),
            "usher_rate_limited_total for {route}"
        );
    }
    println!(
        "guessing: {BURST} guesses then 429 (Retry-After {wait} s) in {:?}",
        started.elapsed()
    );
    app.shutdown().await;
}

/// Guesses sent all at once cannot run more lookups than the budget: each lookup holds one failure while
/// it runs, so the answers never tell more than `burst` guesses apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_guesses_never_exceed_the_budget() {
    const BURST: u32 = 10;
    const GUESSES: usize = 200;
    let app = std::sync::Arc::new(
        spawn_app_with(|c| {
            trust_the_proxy(c);
            c.rate_limits.ticket_lookup_failures = Limit::new(BURST, 1);
        })
        .await,
    );
    let tasks: Vec<_> = (0..GUESSES)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                admit_from(&app, GUESSER, &guess(), &format!("device-{i:08}"))
                    .await
                    .status()
            })
        })
        .collect();
    let (mut unknown, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::NOT_FOUND => unknown += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    println!("{GUESSES} guesses at once: {unknown} looked up, {limited} refused");
    assert!(unknown <= BURST as usize + 1, "{unknown} guesses looked up");
    assert_eq!(unknown + limited, GUESSES);
    std::sync::Arc::into_inner(app).unwrap().shutdown().await;
}

/// Wrong session secrets spend their address's budget (then 429, even for that address's own session),
/// while unknown sessions spend nothing and a viewer elsewhere heartbeats on; and a ticket admits only so
/// often, from anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_session_secrets_and_admit_storms_are_limited() {
    const BURST: u32 = 3;
    let app = spawn_app_with(|c| {
        trust_the_proxy(c);
        c.rate_limits.session_failures = Limit::new(BURST, 1);
        c.rate_limits.admits_per_ticket = Limit::new(BURST, 1);
    })
    .await;
    app.open_show("gig", 2, "newest_wins").await;
    let (_, viewer_token) = app.ticket("gig").await;
    let (_, guesser_token) = app.ticket("gig").await;
    let session_of = |v: Value| {
        (
            v["session_id"].as_str().unwrap().to_owned(),
            v["session_secret"].as_str().unwrap().to_owned(),
        )
    };
    let res = admit_from(&app, VIEWER, &viewer_token, "device-viewer01").await;
    let (viewer_session, viewer_secret) = session_of(res.json().await.unwrap());
    let res = admit_from(&app, GUESSER, &guesser_token, "device-guess001").await;
    let (own_session, own_secret) = session_of(res.json().await.unwrap());
    let beat = |from: &'static str, session: String, secret: String| {
        let req = app
            .client
            .post(app.url(&format!("/api/v1/playback/{session}/heartbeat")))
            .header("x-forwarded-for", from)
            .header("x-usher-session-secret", secret);
        async move { req.send().await.unwrap() }
    };
    // sessions that are gone spend nothing (a player back from a long sleep, a superseded tab's leave)
    for _ in 0..(2 * BURST) {
        let res = beat(
            GUESSER,
            "s_00000000000000000000000000000000".into(),
            guess(),
        )
        .await;
        assert_problem(res, StatusCode::NOT_FOUND, "session_unknown").await;
    }
    for _ in 0..BURST {
        let res = beat(GUESSER, viewer_session.clone(), guess()).await;
        assert_problem(res, StatusCode::FORBIDDEN, "session_secret_invalid").await;
    }
    let res = beat(GUESSER, viewer_session.clone(), guess()).await;
    assert!(retry_after(&res) >= 1);
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // its own session too, and a leave: the store is not asked while the address is over its budget
    let res = beat(GUESSER, own_session.clone(), own_secret.clone()).await;
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/playback/{viewer_session}")))
        .header("x-forwarded-for", GUESSER)
        .header("x-usher-session-secret", guess())
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // the viewer plays on
    let res = beat(VIEWER, viewer_session.clone(), viewer_secret).await;
    assert_eq!(res.status(), StatusCode::OK);

    // admits per ticket, wherever they come from: the viewer's ticket was admitted once
    for (i, from) in ["192.0.2.1", "192.0.2.2"].into_iter().enumerate() {
        let res = admit_from(&app, from, &viewer_token, &format!("device-storm{i:03}")).await;
        assert_eq!(res.status(), StatusCode::CREATED, "admit {i}");
    }
    let res = admit_from(&app, "192.0.2.3", &viewer_token, "device-storm999").await;
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let (_, other) = app.ticket("gig").await;
    let res = admit_from(&app, "192.0.2.3", &other, "device-other001").await;
    assert_eq!(res.status(), StatusCode::CREATED, "another ticket admits");
    app.shutdown().await;
}

/// An API key, a searcher and a console login from one address each get their own budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_searches_and_logins_are_limited() {
    let app = spawn_app_with(|c| {
        trust_the_proxy(c);
        c.rate_limits.api_key_requests = Limit::new(5, 1);
        c.rate_limits.searches = Limit::new(2, 1);
        c.rate_limits.logins = Limit::new(2, 1);
    })
    .await;
    // the tickets key: five requests, then 429; the admin key is not affected
    let unknown = "/api/v1/tickets/t_000000000000000000000000";
    for i in 0..5 {
        let res = app.get_with(unknown, &app.tickets_key).await;
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "tickets key request {i}"
        );
    }
    let res = app.get_with(unknown, &app.tickets_key).await;
    assert!(retry_after(&res) >= 1);
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // searches by the admin key: two, then 429 (its other requests go on)
    for _ in 0..2 {
        let res = app
            .get_with("/api/v1/tickets?q=nothing-like-this", &app.admin_key)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = app
        .get_with("/api/v1/tickets?q=nothing-like-this", &app.admin_key)
        .await;
    assert_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let res = app.get_with("/api/v1/shows", &app.admin_key).await;
    assert_eq!(res.status(), StatusCode::OK);
    // console logins from one address: two attempts, then the console's 429 page
    let login = |from: &'static str| {
        app.client
            .post(app.url("/admin/login"))
            .header("x-forwarded-for", from)
            .header("cookie", "usher_login_csrf=abcdefghijklmnop")
            .form(&[
                ("_csrf", "abcdefghijklmnop"),
                ("name", "admin"),
                ("password", "not the password at all"),
            ])
            .send()
    };
    for _ in 0..2 {
        let res = login(GUESSER).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(GUESSER).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&res) >= 1);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let res = login(VIEWER).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "another address");
    app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------------
// The audit CSV
// ---------------------------------------------------------------------------------------------------------

/// Every field a spreadsheet would read as a formula (OWASP: `=`, `+`, `-`, `@`, tab, carriage return)
/// leaves the CSV export as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_csv_defuses_every_formula_start() {
    let app = spawn_app_with(|_| {}).await;
    let starts = ['=', '+', '-', '@', '\t', '\r'];
    for (i, start) in starts.iter().enumerate() {
        app.state
            .store
            .append_audit(AuditEntry {
                at: app.state.store.now(),
                actor: Actor::System("test".into()),
                action: format!("test.formula{i}"),
                target: format!("{start}HYPERLINK(\"http://x/\")"),
                address: None,
                detail: format!("{start}cmd|' /C calc'!A0"),
            })
            .await
            .unwrap();
    }
    let res = app
        .get_with("/api/v1/audit?format=csv&action=test.", &app.admin_key)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    let mut seen = 0;
    for line in csv.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        // at,actor_kind,actor,action,target,address,detail: the target is the 5th field
        let fields: Vec<&str> = line.splitn(5, ',').collect();
        let rest = fields[4];
        assert!(rest.starts_with("\"'"), "target not defused: {line:?}");
        assert!(rest.contains(",\"'"), "detail not defused: {line:?}");
        seen += 1;
    }
    assert_eq!(seen, starts.len(), "{csv:?}");
    app.shutdown().await;
}
