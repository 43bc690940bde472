//! Webhooks to a real HTTP receiver (issue 20): events arrive signed and verifiable (the check is written
//! here from the README's description, not with Usher's code); a receiver that is down, then answers 500,
//! then is back gets every event, each once; a re-send repeats the event id; a rotated secret signs what
//! follows; `kill -9` of Usher between queueing and sending loses nothing; and three nodes sharing Redis
//! send each event once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use usher_testkit::{RedisServer, ServeProcess};

use crate::support::process::{BIN, api_key, serve_config};
use crate::support::{TestApp, spawn_app_with};

/// What the receiver got: the event and the secret that verified it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    event: Value,
    headers: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
pub(crate) struct Inbox {
    got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 while set.
    failing: Arc<std::sync::atomic::AtomicBool>,
}

/// A receiver on `addr` (port 0: any) until the handle is aborted.
pub(crate) async fn receiver(
    addr: SocketAddr,
    inbox: Inbox,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route(
            "/hooks",
            axum::routing::post(
                |State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes| async move {
                    if inbox.failing.load(std::sync::atomic::Ordering::SeqCst) {
                        return AxumStatus::INTERNAL_SERVER_ERROR;
                    }
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let mut got = inbox.got.lock().unwrap();
                    got.push(Received {
                        event: json!({"raw": String::from_utf8_lossy(&body), "parsed": event}),
                        headers,
                    });
                    AxumStatus::NO_CONTENT
                },
            ),
        )
        .with_state(inbox);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// The receiver's check, as the README tells it: `Usher-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
/// "<t>.<body>">` under the endpoint's secret, `t` within five minutes.
fn verified(r: &Received, secret: &str) -> bool {
    let Some(header) = r.headers.get("usher-signature") else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = hex::decode(x).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if (now - t).abs() > 300 {
        return false;
    }
    let body = r.event["raw"].as_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&v1).is_ok()
}

pub(crate) fn event_ids(inbox: &Inbox, kind: &str) -> Vec<String> {
    inbox
        .got
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.event["parsed"]["type"] == kind)
        .map(|r| r.event["parsed"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn revoke(app: &TestApp, ticket: &str) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{ticket}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_arrive_signed_once_through_an_outage_of_the_receiver() {
    let app = spawn_app_with(|c| {
        c.webhooks.poll_ms = 100;
        c.webhooks.retry_base_s = 1;
        c.webhooks.timeout_ms = 2_000;
        c.webhooks.allow_private_targets = true;
    })
    .await;
    app.open_show("demo", 1, "newest_wins").await;
    let inbox = Inbox::default();
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let (status, endpoint) = admin_json(
        &app,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(json!({"url": format!("http://{addr}/hooks"), "events": ["ticket.revoked"], "description": "refunds"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    // the secret is never shown again
    let (_, listed) = admin_json(&app, reqwest::Method::GET, "/api/v1/webhooks", None).await;
    assert!(!listed.to_string().contains(&secret), "{listed}");
    // hostile endpoints are refused
    for bad in [
        json!({"url": "ftp://x.example/"}),
        json!({"url": "https://u:p@x.example/"}),
        json!({"url": "https://x.example/", "events": ["ticket.nope"]}),
    ] {
        let (status, body) =
            admin_json(&app, reqwest::Method::POST, "/api/v1/webhooks", Some(bad)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
    }

    // three revocations: three events, each signed, with its id in the header and the body
    let mut tickets = Vec::new();
    for _ in 0..9 {
        tickets.push(app.ticket("demo").await.0);
    }
    for t in &tickets[..3] {
        revoke(&app, t).await;
    }
    // a repeated revoke is no new event
    revoke(&app, &tickets[0]).await;
    wait_for("three events", 15, || {
        event_ids(&inbox, "ticket.revoked").len() >= 3
    })
    .await;
    {
        let got = inbox.got.lock().unwrap();
        for r in got.iter() {
            assert!(verified(r, &secret), "signature: {r:?}");
            assert!(
                !verified(r, "whsec_another"),
                "a wrong secret does not verify"
            );
            assert_eq!(
                r.headers["usher-event-id"],
                r.event["parsed"]["id"].as_str().unwrap()
            );
            assert_eq!(r.headers["usher-event-type"], "ticket.revoked");
            assert!(
                tickets
                    .iter()
                    .any(|t| r.event["parsed"]["data"]["ticket_id"] == t.as_str())
            );
        }
    }

    // the receiver goes down: three more are queued, attempted and retried
    server.abort();
    let _ = server.await;
    for t in &tickets[3..6] {
        revoke(&app, t).await;
    }
    let log_path = format!("/api/v1/webhooks/{id}/deliveries?limit=20");
    let mut failed_attempts = false;
    for _ in 0..100 {
        let (_, log) = admin_json(&app, reqwest::Method::GET, &log_path, None).await;
        failed_attempts = log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["state"] == "pending"
                    && d["attempts"].as_u64() >= Some(1)
                    && d["last_error"].is_string()
            })
            .count()
            == 3;
        if failed_attempts {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failed_attempts,
        "the three deliveries failed and wait for their retry"
    );
    // back, but answering 500 for a while: the retries go on
    inbox
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, server) = receiver(addr, inbox.clone()).await;
    for t in &tickets[6..9] {
        revoke(&app, t).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    inbox
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    wait_for("all nine events", 40, || {
        event_ids(&inbox, "ticket.revoked").len() >= 9
    })
    .await;
    let ids = event_ids(&inbox, "ticket.revoked");
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (9, 9),
        "every event once: {ids:?}"
    );
    // the receiver records a request before it answers, and the sender records the answer after: the
    // log says delivered a moment later
    let mut log = Vec::new();
    for _ in 0..100 {
        let (_, v) = admin_json(&app, reqwest::Method::GET, &log_path, None).await;
        log = v["deliveries"].as_array().unwrap().clone();
        if log.iter().all(|d| d["state"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(log.len(), 9);
    assert!(log.iter().all(|d| d["state"] == "delivered"), "{log:?}");
    assert!(
        log.iter().any(|d| d["attempts"].as_u64() > Some(1)),
        "some were retried"
    );

    // a re-send repeats the event (same id), signed with the current secret after a rotation
    let (status, rotated) = admin_json(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{id}/secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let first = log.last().unwrap();
    let (status, _) = admin_json(
        &app,
        reqwest::Method::POST,
        &format!(
            "/api/v1/webhooks/{id}/deliveries/{}/resend",
            first["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_for("the re-sent event", 15, || {
        event_ids(&inbox, "ticket.revoked").len() >= 10
    })
    .await;
    {
        let got = inbox.got.lock().unwrap();
        let last = got.last().unwrap();
        assert_eq!(last.event["parsed"]["id"], first["event_id"]);
        assert!(verified(last, &new_secret) && !verified(last, &secret));
    }
    // unknown ids
    let (status, body) = admin_json(
        &app,
        reqwest::Method::GET,
        "/api/v1/webhooks/wh_0000000000000000",
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("webhook_unknown"))
    );
    let (status, body) = admin_json(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/webhooks/{id}/deliveries/dl_000000000000000000000000/resend"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("delivery_unknown"))
    );
    let (status, _) = admin_json(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.abort();
    app.shutdown().await;
}

fn webhook_settings() -> &'static str {
    "[webhooks]\npoll_ms = 100\nretry_base_s = 1\ntimeout_ms = 2000\nallow_private_targets = true\n"
}

async fn create_endpoint(http: &reqwest::Client, base: &str, admin: &str, url: &str) -> String {
    let res = http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(admin)
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

async fn revoke_new_tickets(
    http: &reqwest::Client,
    base: &str,
    tickets_key: &str,
    admin: &str,
    n: usize,
) -> Vec<String> {
    let now = time::OffsetDateTime::now_utc();
    let res = http
        .put(format!("{base}/api/v1/shows/hooked"))
        .bearer_auth(admin)
        .json(&json!({
            "title": "Hooked",
            "starts_at": crate::support::rfc3339(now - time::Duration::hours(1)),
            "ends_at": crate::support::rfc3339(now + time::Duration::hours(2)),
            "stream_path": "demo",
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let mut ids = Vec::new();
    for _ in 0..n {
        let res = http
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(tickets_key)
            .json(&json!({"show_id": "hooked"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let id = res.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let res = http
            .post(format!("{base}/api/v1/tickets/{id}/revoke"))
            .bearer_auth(tickets_key)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        ids.push(id);
    }
    ids
}

/// An event queued, then Usher killed with SIGKILL before the receiver could take it: the restarted
/// server sends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_between_queueing_and_sending_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(dir.path(), webhook_settings());
    let (admin, tickets) = (api_key(&config, "admin"), api_key(&config, "tickets"));
    let http = reqwest::Client::new();
    // a port nothing listens on yet
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = spare.local_addr().unwrap();
    drop(spare);
    let mut node = ServeProcess::start(Path::new(BIN), &config).await.unwrap();
    create_endpoint(
        &http,
        &node.base_url,
        &admin,
        &format!("http://{addr}/hooks"),
    )
    .await;
    let revoked = revoke_new_tickets(&http, &node.base_url, &tickets, &admin, 5).await;
    // let a few attempts fail, then kill it
    tokio::time::sleep(Duration::from_millis(500)).await;
    node.kill().await;
    let inbox = Inbox::default();
    let (_, server) = receiver(addr, inbox.clone()).await;
    let _node = ServeProcess::start(Path::new(BIN), &config).await.unwrap();
    wait_for("the five events after the restart", 60, || {
        event_ids(&inbox, "ticket.revoked").len() >= 5
    })
    .await;
    let got: Vec<String> = inbox
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            r.event["parsed"]["data"]["ticket_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for t in &revoked {
        assert!(got.contains(t), "{t} arrived: {got:?}");
    }
    server.abort();
}

/// Three nodes share one Redis: twenty events, each sent by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_on_redis_send_each_event_once() {
    let (redis, port) = RedisServer::start_tcp().expect("redis-server");
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\nkey_prefix = \"hooks:\"\n",
        webhook_settings()
    );
    let config = serve_config(dir.path(), &extra);
    let (admin, tickets) = (api_key(&config, "admin"), api_key(&config, "tickets"));
    let inbox = Inbox::default();
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(ServeProcess::start(Path::new(BIN), &config).await.unwrap());
    }
    let http = reqwest::Client::new();
    create_endpoint(
        &http,
        &nodes[0].base_url,
        &admin,
        &format!("http://{addr}/hooks"),
    )
    .await;
    let mut revoked = Vec::new();
    for node in &nodes {
        revoked.extend(revoke_new_tickets(&http, &node.base_url, &tickets, &admin, 7).await);
    }
    wait_for("21 events", 30, || {
        event_ids(&inbox, "ticket.revoked").len() >= 21
    })
    .await;
    // and no more come: a second look after a few polls of every node
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = event_ids(&inbox, "ticket.revoked");
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (21, 21),
        "each event sent once: {ids:?}"
    );
    server.abort();
    drop(nodes);
    drop(redis);
}

/// A ticket's first play is told once: not again for a second device, a re-admit or another ticket's
/// revocation (the endpoint takes only that type).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tickets_first_play_is_told_once() {
    let app = spawn_app_with(|c| {
        c.webhooks.poll_ms = 100;
        c.webhooks.allow_private_targets = true;
    })
    .await;
    app.open_show("demo", 2, "newest_wins").await;
    let inbox = Inbox::default();
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let (status, endpoint) = admin_json(
        &app,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(json!({"url": format!("http://{addr}/hooks"), "events": ["ticket.first_play"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let (ticket, token) = app.ticket("demo").await;
    assert_eq!(
        app.admit(&token, "device-first-a").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.admit(&token, "device-first-b").await.status(),
        StatusCode::CREATED
    );
    let (other, _) = app.ticket("demo").await;
    revoke(&app, &other).await;
    wait_for("the first play", 15, || {
        !event_ids(&inbox, "ticket.first_play").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = inbox.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one event: {got:?}");
    assert!(verified(&got[0], &secret));
    assert_eq!(got[0].event["parsed"]["data"]["ticket_id"], ticket.as_str());
    assert_eq!(
        got[0].event["parsed"]["data"]["device_label"],
        "label of device-first-a"
    );
    server.abort();
    app.shutdown().await;
}

/// Refused admits reach the ticket site summed per show and reason, once per `webhooks.refusals_every_s`
/// — a crowd hammering a sold-out or not-yet-open show makes one event, not one per request — and a
/// refusal the event does not report (an unknown ticket names no show) counts nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_are_told_summed_per_show() {
    let app = spawn_app_with(|c| {
        c.webhooks.poll_ms = 100;
        c.webhooks.allow_private_targets = true;
        c.webhooks.refusals_every_s = 2;
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let res = app
        .put_show(
            "later",
            json!({
                "title": "Later",
                "starts_at": crate::support::rfc3339(now + time::Duration::hours(1)),
                "ends_at": crate::support::rfc3339(now + time::Duration::hours(2)),
                "stream_path": "demo",
            }),
        )
        .await;
    assert!(res.status().is_success());
    app.open_show("full", 1, "oldest_wins").await;
    let inbox = Inbox::default();
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let (status, endpoint) = admin_json(
        &app,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        Some(json!({"url": format!("http://{addr}/hooks"), "events": ["session.refused"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = endpoint["secret"].as_str().unwrap().to_owned();

    let (_, early) = app.ticket("later").await;
    for i in 0..5 {
        let res = app.admit(&early, &format!("device-early-{i}")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    let (_, full) = app.ticket("full").await;
    assert_eq!(
        app.admit(&full, "device-full-a").await.status(),
        StatusCode::CREATED
    );
    for i in 0..3 {
        let res = app.admit(&full, &format!("device-full-{i}x")).await;
        assert_eq!(res.status(), StatusCode::CONFLICT);
    }
    assert_eq!(
        app.admit(&"Q".repeat(43), "device-nobody").await.status(),
        StatusCode::NOT_FOUND
    );

    wait_for("both shows' sums", 15, || {
        event_ids(&inbox, "session.refused").len() >= 2
    })
    .await;
    // the refusals above took well under a window, but may straddle a window's end: then a show's sum
    // comes in two events; a window with no refusal sends nothing
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let got = inbox.got.lock().unwrap().clone();
    let mut by_show: BTreeMap<String, (u32, BTreeMap<String, u64>, u64)> = BTreeMap::new();
    for r in &got {
        assert!(verified(r, &secret));
        let data = &r.event["parsed"]["data"];
        assert!(data["from"].as_str().unwrap() < data["until"].as_str().unwrap());
        let entry = by_show
            .entry(data["show_id"].as_str().unwrap().to_owned())
            .or_default();
        entry.0 += 1;
        for (code, n) in data["counts"].as_object().unwrap() {
            *entry.1.entry(code.clone()).or_default() += n.as_u64().unwrap();
        }
        entry.2 += data["total"].as_u64().unwrap();
    }
    assert_eq!(by_show.len(), 2, "{got:?}");
    let (events, counts, total) = &by_show["later"];
    assert!(*events <= 2, "5 refusals in at most 2 events: {got:?}");
    assert_eq!(
        (counts.clone(), *total),
        (BTreeMap::from([("not_started".to_owned(), 5)]), 5)
    );
    let (events, counts, total) = &by_show["full"];
    assert!(*events <= 2, "3 refusals in at most 2 events: {got:?}");
    assert_eq!(
        (counts.clone(), *total),
        (BTreeMap::from([("ticket_in_use".to_owned(), 3)]), 3)
    );
    server.abort();
    app.shutdown().await;
}

/// The console's webhooks pages (issue 20): an admin adds an endpoint (its secret shown once), sees the
/// deliveries of a real event with their answers, re-sends one (the receiver gets the same event id
/// again), pauses the endpoint (no event is queued for it), makes a new secret and deletes it; an
/// observer sees the pages without the buttons and cannot post the forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_manages_endpoints_and_shows_their_deliveries() {
    use crate::admin_console::{add_user, between, login};
    use usher_core::admin::Role;

    let app = spawn_app_with(|c| {
        c.webhooks.poll_ms = 100;
        c.webhooks.allow_private_targets = true;
    })
    .await;
    app.open_show("demo", 1, "newest_wins").await;
    add_user(&app, "ada", Role::Admin).await;
    add_user(&app, "otto", Role::Observer).await;
    let admin = login(&app, "ada").await;
    let inbox = Inbox::default();
    let (addr, server) = receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let post =
        |path: String, fields: Vec<(&'static str, String)>, who: &crate::admin_console::Session| {
            let mut fields = fields;
            fields.push(("_csrf", who.csrf.clone()));
            app.client
                .post(app.url(&path))
                .header("cookie", &who.cookie)
                .form(&fields)
                .send()
        };
    let get = |path: String, who: &crate::admin_console::Session| {
        app.client
            .get(app.url(&path))
            .header("cookie", &who.cookie)
            .send()
    };

    let res = post(
        "/admin/webhooks".into(),
        vec![
            ("url", format!("http://{addr}/hooks")),
            ("description", "box office".into()),
            ("events", "ticket.revoked".into()),
        ],
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let secret = between(&html, "id=\"new-webhook-secret\">", "<")
        .expect("the secret, once")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = between(&html, "<h2>New endpoint <a href=\"/admin/webhooks/", "\"")
        .unwrap()
        .to_owned();
    let list = get("/admin/webhooks".into(), &admin)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&id) && list.contains("box office") && !list.contains(&secret));

    let (ticket, _) = app.ticket("demo").await;
    revoke(&app, &ticket).await;
    wait_for("the revocation", 15, || {
        event_ids(&inbox, "ticket.revoked").len() == 1
    })
    .await;
    let got = inbox.got.lock().unwrap().clone();
    assert!(verified(&got[0], &secret), "signed with the secret shown");
    let event_id = got[0].event["parsed"]["id"].as_str().unwrap().to_owned();
    let mut page = String::new();
    for _ in 0..50 {
        page = get(format!("/admin/webhooks/{id}"), &admin)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("HTTP 204") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        page.contains(&event_id) && page.contains("HTTP 204") && page.contains("delivered"),
        "{page}"
    );
    let delivery = between(&page, "data-delivery=\"", "\"").unwrap().to_owned();

    let res = post(
        format!("/admin/webhooks/{id}/resend"),
        vec![("delivery", delivery.clone())],
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    wait_for("the re-send", 15, || {
        event_ids(&inbox, "ticket.revoked").len() == 2
    })
    .await;
    assert_eq!(
        event_ids(&inbox, "ticket.revoked"),
        vec![event_id.clone(), event_id.clone()]
    );

    // an observer reads but has no buttons, and its forms are refused
    let observer = login(&app, "otto").await;
    let seen = get(format!("/admin/webhooks/{id}"), &observer)
        .await
        .unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let seen = seen.text().await.unwrap();
    assert!(
        seen.contains(&event_id)
            && !seen.contains("Re-send")
            && !seen.contains("New signing secret")
    );
    let res = post(format!("/admin/webhooks/{id}/delete"), vec![], &observer)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // paused: a revocation queues nothing for it
    let res = post(
        format!("/admin/webhooks/{id}/enabled"),
        vec![("enabled", "false".into())],
        &admin,
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (other, _) = app.ticket("demo").await;
    revoke(&app, &other).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        event_ids(&inbox, "ticket.revoked").len(),
        2,
        "nothing sent while paused"
    );

    let res = post(format!("/admin/webhooks/{id}/secret"), vec![], &admin)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let rotated = between(&html, "id=\"new-webhook-secret\">", "<").unwrap();
    assert!(rotated.starts_with("whsec_") && rotated != secret);

    let res = post(format!("/admin/webhooks/{id}/delete"), vec![], &admin)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let gone = get(format!("/admin/webhooks/{id}"), &admin).await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    server.abort();
    app.shutdown().await;
}
