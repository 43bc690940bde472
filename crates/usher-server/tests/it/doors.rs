//! Doors-open capacity (issue 20): a show with a capacity or an admit rate lets newcomers in first come,
//! first served as seats free, and tells the others their place (202, `Retry-After`); a ticket already
//! playing — a reload, a takeover by the same ticket's other device — never waits. On both stores.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, assert_problem, spawn_app_on};

async fn door_show(app: &TestApp, id: &str, extra: Value) {
    let now = time::OffsetDateTime::now_utc();
    let mut body = json!({
        "title": format!("Show {id}"),
        "starts_at": crate::support::rfc3339(now - time::Duration::hours(1)),
        "ends_at": crate::support::rfc3339(now + time::Duration::hours(2)),
        "stream_path": "demo",
        "max_devices": 1,
        "policy": "newest_wins",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let res = app.put_show(id, body).await;
    assert!(res.status().is_success(), "put show: {}", res.status());
}

async fn waiting(res: Response) -> Value {
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["waiting"], true);
    assert_eq!(v["retry_after_s"], retry);
    v
}

async fn admitted(res: Response) -> Value {
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn first_come_first_served(backend: Backend) {
    let app = spawn_app_on(backend).await;
    door_show(&app, "full", json!({"capacity": 2})).await;
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(app.ticket("full").await.1);
    }
    let dev = |i: usize| format!("device-door-{i:02}");
    let first = admitted(app.admit(&tickets[0], &dev(0)).await).await;
    admitted(app.admit(&tickets[1], &dev(1)).await).await;
    for (i, t) in tickets.iter().enumerate().skip(2) {
        let v = waiting(app.admit(t, &dev(i)).await).await;
        assert_eq!(v["position"], i as u64 - 1, "{v}");
        assert_eq!(v["retry_after_s"], 2);
    }

    // tickets already playing never wait: a reload with the seat's secret, another device taking over
    let secret = first["session_secret"].as_str().unwrap();
    let again = admitted(app.readmit(&tickets[0], &dev(0), secret).await).await;
    assert_eq!(again["reattached"], true);
    let moved = admitted(app.admit(&tickets[0], "device-door-00-tv").await).await;

    // the seat frees: the head of the line comes in, not the one who asks first
    let res = app
        .client
        .delete(app.url(&format!(
            "/api/v1/playback/{}",
            moved["session_id"].as_str().unwrap()
        )))
        .header(
            "x-usher-session-secret",
            moved["session_secret"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let v = waiting(app.admit(&tickets[3], &dev(3)).await).await;
    assert_eq!(v["position"], 2);
    admitted(app.admit(&tickets[2], &dev(2)).await).await;
    let v = waiting(app.admit(&tickets[3], &dev(3)).await).await;
    assert_eq!(v["position"], 1);
    let v = waiting(app.admit(&tickets[4], &dev(4)).await).await;
    assert_eq!(v["position"], 2);
    app.shutdown().await;
}

#[tokio::test]
async fn the_door_lets_in_first_come_first_served() {
    first_come_first_served(Backend::Embedded).await;
}

#[tokio::test]
async fn the_door_lets_in_first_come_first_served_on_redis() {
    first_come_first_served(Backend::Redis).await;
}

/// An admit rate lets so many newcomers in per second, and the others get an estimated wait from it.
#[tokio::test]
async fn an_admit_rate_paces_the_crowd() {
    let app = spawn_app_on(Backend::Embedded).await;
    door_show(&app, "paced", json!({"admit_rate_per_s": 2})).await;
    let mut codes = Vec::new();
    let mut waits = Vec::new();
    for i in 0..6 {
        let (_, token) = app.ticket("paced").await;
        let res = app.admit(&token, &format!("device-paced-{i:02}")).await;
        codes.push(res.status());
        if res.status() == StatusCode::ACCEPTED {
            waits.push(waiting(res).await);
        }
    }
    assert_eq!(
        codes.iter().filter(|c| **c == StatusCode::CREATED).count(),
        2,
        "{codes:?}"
    );
    for (i, w) in waits.iter().enumerate() {
        assert_eq!(w["position"], i as u64 + 1);
        assert_eq!(
            w["estimated_wait_s"],
            (i as u64 + 1).div_ceil(2),
            "at 2 a second: {w}"
        );
    }
    app.shutdown().await;
}

/// A capacity or rate out of range is refused.
#[tokio::test]
async fn door_settings_out_of_range_are_refused() {
    let app = spawn_app_on(Backend::Embedded).await;
    for (field, value) in [
        ("capacity", json!(0)),
        ("capacity", json!(10_000_001)),
        ("admit_rate_per_s", json!(0)),
        ("admit_rate_per_s", json!(100_001)),
    ] {
        let now = time::OffsetDateTime::now_utc();
        let mut body = json!({
            "title": "x",
            "starts_at": crate::support::rfc3339(now),
            "ends_at": crate::support::rfc3339(now + time::Duration::hours(1)),
            "stream_path": "demo",
        });
        body[field] = value;
        let p = assert_problem(
            app.put_show("bad", body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains(field), "{p}");
    }
    app.shutdown().await;
}

/// A made-up session secret does not jump the line: only a ticket with a seat playing skips the door.
#[tokio::test]
async fn a_made_up_secret_does_not_jump_the_line() {
    let app = spawn_app_on(Backend::Embedded).await;
    door_show(&app, "full", json!({"capacity": 1})).await;
    let (_, inside) = app.ticket("full").await;
    let (_, outside) = app.ticket("full").await;
    admitted(app.admit(&inside, "device-inside-01").await).await;
    let res = app
        .readmit(&outside, "device-outside-01", "AAAAAAAAAAAAAAAAAAAAAA")
        .await;
    let v = waiting(res).await;
    assert_eq!(v["position"], 1);
    app.shutdown().await;
}
