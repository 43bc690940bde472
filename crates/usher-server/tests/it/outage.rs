//! A Redis outage behind a TCP proxy that cuts and restores the connection: new admits fail fast with 503
//! `store_unavailable` and `Retry-After`; sessions already playing keep playing (heartbeats answer
//! "degraded", their grants still open media); `/readyz` stays ready as `degraded` for the outage grace
//! (so a load balancer keeps the nodes that keep the viewers playing) and turns not ready past it; after
//! the restore everything resumes and nothing is lost.

use std::time::{Duration, Instant};

use crate::support::{assert_problem, spawn_app_with};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use usher_server::settings::{RedisSettings, StoreSettings};
use usher_testkit::{ChaosProxy, RedisServer, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_outage_fails_new_admits_fast_and_keeps_viewers_playing() {
    let (_redis, port) = RedisServer::start_tcp().expect("redis-server");
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(move |c| {
        c.store = StoreSettings::Redis(RedisSettings {
            url: SecretString::from(url),
            key_prefix: "outage:".into(),
            connect_timeout_ms: 300,
            response_timeout_ms: 500,
            wait_replicas: 0,
            wait_timeout_ms: 100,
            sentinel: None,
        });
        c.http.store_outage_grace_s = 60;
    })
    .await;
    app.open_show("gig", 1, "newest_wins").await;
    let (ticket_id, token) = app.ticket("gig").await;
    let (_, other_token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-aaaa").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let playing: Value = res.json().await.unwrap();
    let session = playing["session_id"].as_str().unwrap().to_owned();
    let media = format!(
        "/o/{}/demo/360p/index.m3u8",
        playing["grants"][0]["token"].as_str().unwrap()
    );

    proxy.cut();
    let started = Instant::now();
    let res = app.admit(&other_token, "device-bbbb").await;
    let took = started.elapsed();
    assert!(
        res.headers().get("retry-after").is_some(),
        "Retry-After on 503"
    );
    assert_problem(res, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").await;
    assert!(
        took < Duration::from_secs(3),
        "the refusal took {took:?}: requests must not hang"
    );
    let hb = app.heartbeat(&session).await;
    assert_eq!(hb.status(), StatusCode::OK);
    let hb: Value = hb.json().await.unwrap();
    assert_eq!(hb["status"], "degraded", "{hb}");
    // a native player's steering reload is a heartbeat too: the same grace, not a 503
    let steering = app
        .client
        .get(app.url(&format!("/hls/{session}/steering.json")))
        .send()
        .await
        .unwrap();
    assert_eq!(steering.status(), StatusCode::OK);
    let steering: Value = steering.json().await.unwrap();
    assert_eq!(steering["TTL"], 5, "{steering}");
    assert!(
        steering["PATHWAY-PRIORITY"]
            .as_array()
            .is_some_and(|p| p.iter().any(|id| id == "origin")),
        "{steering}"
    );
    assert_eq!(
        app.client
            .get(app.url(&media))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the grant still plays"
    );
    // every node shares the store: were they unready now, a load balancer checking /readyz would take
    // them all out and answer the viewers' heartbeats itself, with 503s instead of "degraded"
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["store"], "unavailable", "{ready}");
    eprintln!("admit refused {took:?} into the outage");

    proxy.restore();
    wait_until(
        Duration::from_secs(20),
        "readiness after the restore",
        || async {
            let r = app.client.get(app.url("/readyz")).send().await.ok()?;
            (r.status() == StatusCode::OK).then_some(())
        },
    )
    .await
    .unwrap();
    let hb = app.heartbeat(&session).await;
    assert_eq!(hb.status(), StatusCode::OK);
    assert_eq!(hb.json::<Value>().await.unwrap()["status"], "ok");
    let res = app.admit(&other_token, "device-bbbb").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(app.ticket_status(&ticket_id).await["status"], "active");
    app.shutdown().await;
}

/// Grants live twice the heartbeat interval, and no heartbeat can hand out fresh ones while the store is
/// unreachable: a grant that was valid when the outage began keeps serving on the origin for the grace,
/// and no longer once the store answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_grant_lapsing_during_an_outage_plays_on_for_the_grace() {
    let (_redis, port) = RedisServer::start_tcp().expect("redis-server");
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(move |c| {
        c.store = StoreSettings::Redis(RedisSettings {
            url: SecretString::from(url),
            key_prefix: "outage-grant:".into(),
            connect_timeout_ms: 300,
            response_timeout_ms: 500,
            wait_replicas: 0,
            wait_timeout_ms: 100,
            sentinel: None,
        });
        c.http.store_outage_grace_s = 60;
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = app
        .put_show(
            "quick",
            serde_json::json!({
                "title": "Quick", "stream_path": "demo",
                "starts_at": rfc(now - time::Duration::hours(1)),
                "ends_at": rfc(now + time::Duration::hours(1)),
                "heartbeat_interval_s": 1, "lease_ttl_s": 3,
            }),
        )
        .await;
    assert!(res.status().is_success());
    let (_, token) = app.ticket("quick").await;
    let playing: Value = app.admit(&token, "device-aaaa").await.json().await.unwrap();
    let media = format!(
        "/o/{}/demo/360p/index.m3u8",
        playing["grants"][0]["token"].as_str().unwrap()
    );
    let get = || async {
        app.client
            .get(app.url(&media))
            .send()
            .await
            .unwrap()
            .status()
    };
    proxy.cut();
    // the origin learns of the outage at its first store call
    assert_eq!(get().await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(
        get().await,
        StatusCode::OK,
        "a grant lapsed during the outage plays on"
    );
    proxy.restore();
    wait_until(
        Duration::from_secs(20),
        "the store answers again",
        || async { (get().await == StatusCode::FORBIDDEN).then_some(()) },
    )
    .await
    .expect("once the store answers, a lapsed grant is refused");
    app.shutdown().await;
}

/// Readiness rides a store outage for `http.store_outage_grace_s`, as heartbeats do, and no longer: past
/// the grace the node is not ready (and its heartbeats answer 503); once the store answers it is ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readiness_is_degraded_for_the_outage_grace_then_not_ready() {
    let (_redis, port) = RedisServer::start_tcp().expect("redis-server");
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(move |c| {
        c.store = StoreSettings::Redis(RedisSettings {
            url: SecretString::from(url),
            key_prefix: "outage-ready:".into(),
            connect_timeout_ms: 300,
            response_timeout_ms: 500,
            wait_replicas: 0,
            wait_timeout_ms: 100,
            sentinel: None,
        });
        c.http.store_outage_grace_s = 2;
    })
    .await;
    let readyz = || async {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        (
            status,
            body["status"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(readyz().await, (StatusCode::OK, "ready".into()));
    proxy.cut();
    let cut = Instant::now();
    assert_eq!(readyz().await, (StatusCode::OK, "degraded".into()));
    tokio::time::sleep(Duration::from_millis(2_600).saturating_sub(cut.elapsed())).await;
    assert_eq!(
        readyz().await,
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready".into()),
        "past the grace"
    );
    proxy.restore();
    wait_until(
        Duration::from_secs(20),
        "readiness after the restore",
        || async { (readyz().await == (StatusCode::OK, "ready".into())).then_some(()) },
    )
    .await
    .unwrap();
    app.shutdown().await;
}

/// Leases lapse in the store while it is unreachable (no heartbeat can renew them), yet the outage grace
/// tells their players to play on: a Redis fail-over longer than a lease's slack (Sentinel's default
/// `down-after-milliseconds` is 30 s; a lease is 45 s from a heartbeat up to 15 s old) ended a fifth of
/// the viewers of the operations drill with 410 `session_expired` at their first heartbeat after it. A
/// lease that lapsed during an outage the node rode is held again by that heartbeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_that_lapses_during_an_outage_plays_on_after_it() {
    let (_redis, port) = RedisServer::start_tcp().expect("redis-server");
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into())
        .await
        .unwrap();
    let url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(move |c| {
        c.store = StoreSettings::Redis(RedisSettings {
            url: SecretString::from(url),
            key_prefix: "outage-lapse:".into(),
            connect_timeout_ms: 300,
            response_timeout_ms: 500,
            wait_replicas: 0,
            wait_timeout_ms: 100,
            sentinel: None,
        });
        c.http.store_outage_grace_s = 60;
    })
    .await;
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = app
        .put_show(
            "short",
            serde_json::json!({
                "title": "Short leases", "stream_path": "demo",
                "starts_at": rfc(now - time::Duration::hours(1)),
                "ends_at": rfc(now + time::Duration::hours(1)),
                "heartbeat_interval_s": 1, "lease_ttl_s": 2,
            }),
        )
        .await;
    assert!(res.status().is_success());
    let (_, token) = app.ticket("short").await;
    let (_, other_token) = app.ticket("short").await;
    let playing: Value = app.admit(&token, "device-aaaa").await.json().await.unwrap();
    let session = playing["session_id"].as_str().unwrap().to_owned();
    let lapsed: Value = app
        .admit(&other_token, "device-bbbb")
        .await
        .json()
        .await
        .unwrap();
    let lapsed = lapsed["session_id"].as_str().unwrap().to_owned();
    // the other viewer stops heartbeating: its lease lapses before the outage
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let hb = app.heartbeat(&session).await;
        assert_eq!(hb.status(), StatusCode::OK);
        assert_eq!(hb.json::<Value>().await.unwrap()["status"], "ok");
    }

    proxy.cut();
    let hb: Value = app.heartbeat(&session).await.json().await.unwrap();
    assert_eq!(hb["status"], "degraded", "{hb}");
    // longer than the lease: it lapses in the store meanwhile
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let hb: Value = app.heartbeat(&session).await.json().await.unwrap();
    assert_eq!(hb["status"], "degraded", "{hb}");
    proxy.restore();

    // the watch page's steering reload only checks the seat: it passes, and leaves the lease to the
    // heartbeat (which the check must not end first)
    let steering = wait_until(
        Duration::from_secs(20),
        "the store answers again",
        || async {
            let r = app
                .client
                .get(app.url(&format!("/hls/{session}/steering.json")))
                .send()
                .await
                .ok()?;
            let body: Value = r.json().await.ok()?;
            (body["TTL"] != 5).then_some(body)
        },
    )
    .await
    .unwrap();
    assert_eq!(steering["TTL"], 1, "{steering}");
    let hb = app.heartbeat(&session).await;
    assert_eq!(
        hb.status(),
        StatusCode::OK,
        "the lease lapsed during the outage plays on"
    );
    assert_eq!(hb.json::<Value>().await.unwrap()["status"], "ok");
    let hb = app.heartbeat(&session).await;
    assert_eq!(hb.status(), StatusCode::OK);
    // the one that had lapsed before the outage stays over
    assert_problem(
        app.heartbeat(&lapsed).await,
        StatusCode::GONE,
        "session_expired",
    )
    .await;
    app.shutdown().await;
}
