//! Geo over real HTTP: shows that allow some countries, addresses presented through `X-Forwarded-For`
//! from a trusted proxy (127.0.0.1), spoofed headers from an untrusted peer, heartbeats from elsewhere,
//! the GeoIP admin API and readiness.
//!
//! The database is the usher-geo fixture written by a real MaxMind DB writer: 192.0.2.0/24 is in Germany
//! (in Austria in v2), 198.51.100.0/24 in France, 203.0.113.0/24 in the United States.

use std::path::PathBuf;

use crate::support::{TestApp, assert_problem, spawn_app_with};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

const DE: &str = "192.0.2.10";
const FR: &str = "198.51.100.10";
const US: &str = "203.0.113.10";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../usher-geo/tests/fixtures")
        .join(name)
}

/// An app behind a trusted proxy (127.0.0.1), with the v1 fixture at `<data_dir>/geo/db.mmdb`.
async fn geo_app(trusted: bool) -> TestApp {
    spawn_app_with(|cfg| {
        let path = cfg.data_dir.join("geo").join("db.mmdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(fixture("GeoIP2-Country-Test.mmdb"), &path).unwrap();
        cfg.geoip.path = Some(path);
        if trusted {
            cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        }
    })
    .await
}

async fn geo_show(app: &TestApp, id: &str, geo: Value) {
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let res = app
        .put_show(
            id,
            json!({
                "title": format!("Show {id}"),
                "starts_at": fmt(now - time::Duration::hours(1)),
                "ends_at": fmt(now + time::Duration::hours(2)),
                "stream_path": "demo",
                "geo": geo,
            }),
        )
        .await;
    assert!(res.status().is_success(), "put show: {}", res.status());
}

async fn admit_from(app: &TestApp, token: &str, device: &str, xff: &str) -> Response {
    app.client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", device)
        .header("x-forwarded-for", xff)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap()
}

async fn heartbeat_from(app: &TestApp, session: &str, xff: &str) -> Response {
    app.client
        .post(app.url(&format!("/api/v1/playback/{session}/heartbeat")))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap()
}

async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key)
}

#[tokio::test]
async fn a_show_for_some_countries_refuses_the_others_by_name() {
    let app = geo_app(true).await;
    geo_show(&app, "dach", json!({"allow_countries": ["DE", "AT", "CH"]})).await;
    let (ticket, token) = app.ticket("dach").await;

    let body = assert_problem(
        admit_from(&app, &token, "device-fr-0001", FR).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "FR", "{body}");
    let body = assert_problem(
        admit_from(&app, &token, "device-us-0001", US).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "US");

    let res = admit_from(&app, &token, "device-de-0001", DE).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    // the ticket's usage records where it played from; refusals are not usage
    let status = app.ticket_status(&ticket).await;
    let countries: Vec<&str> = status["usage"]["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["country"].as_str().unwrap())
        .collect();
    assert_eq!(countries, ["DE"], "{status}");

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"usher_geo_refusals_total{country="FR"}"#),
        "refusals by country"
    );
    assert!(metrics.contains("usher_geoip_build_timestamp_seconds"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_spoofed_forwarded_header_from_an_untrusted_peer_is_ignored() {
    // no trusted proxies: 127.0.0.1 is the client, whatever it claims
    let app = geo_app(false).await;
    geo_show(
        &app,
        "de-only",
        json!({"allow_countries": ["DE"], "unknown": "deny"}),
    )
    .await;
    let (_, token) = app.ticket("de-only").await;
    let body = assert_problem(
        admit_from(&app, &token, "device-spoof-01", DE).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], Value::Null, "127.0.0.1 has no country");
    app.shutdown().await;

    // behind a trusted proxy the header is read, from the right: a client-written entry left of the one
    // the proxy appended does not count
    let app = geo_app(true).await;
    geo_show(
        &app,
        "de-only",
        json!({"allow_countries": ["DE"], "unknown": "deny"}),
    )
    .await;
    let (_, token) = app.ticket("de-only").await;
    let body = assert_problem(
        admit_from(&app, &token, "device-spoof-02", &format!("{DE}, {FR}")).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "FR");
    let res = admit_from(&app, &token, "device-spoof-03", &format!("{FR}, {DE}")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.shutdown().await;
}

#[tokio::test]
async fn a_heartbeat_from_a_refused_country_ends_the_session() {
    let app = geo_app(true).await;
    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let (_, token) = app.ticket("de-only").await;
    let res = admit_from(&app, &token, "device-move-01", DE).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let session = res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        heartbeat_from(&app, &session, DE).await.status(),
        StatusCode::OK
    );

    let body = assert_problem(
        heartbeat_from(&app, &session, FR).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "FR");
    // the session ended: even from Germany again its player learns why
    let body = assert_problem(
        heartbeat_from(&app, &session, DE).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "FR");
    // and the seat is free for an admit from an allowed place
    let res = admit_from(&app, &token, "device-move-02", DE).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.shutdown().await;
}

#[tokio::test]
async fn ranges_win_over_countries() {
    let app = geo_app(true).await;
    geo_show(
        &app,
        "ranges",
        json!({
            "allow_countries": ["DE"],
            "allow_ranges": ["198.51.100.0/28"],
            "deny_ranges": ["192.0.2.0/28", "2001:db8:1::/64"],
        }),
    )
    .await;
    let (_, token) = app.ticket("ranges").await;
    // France, but inside an allowed range
    assert_eq!(
        admit_from(&app, &token, "device-rng-001", "198.51.100.5")
            .await
            .status(),
        StatusCode::CREATED
    );
    // Germany, but inside a denied range (IPv4 and IPv6)
    for (i, ip) in ["192.0.2.5", "2001:db8:1::5"].iter().enumerate() {
        let body = assert_problem(
            admit_from(&app, &token, &format!("device-rng-01{i}"), ip).await,
            StatusCode::FORBIDDEN,
            "geo_blocked",
        )
        .await;
        assert_eq!(body["country"], "DE");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn geo_policies_are_validated_on_write() {
    let app = geo_app(true).await;
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    for (geo, needle) in [
        (json!({"allow_countries": ["XX"]}), "geo.allow_countries"),
        (json!({"deny_countries": ["Germany"]}), "geo.deny_countries"),
        (
            json!({"allow_ranges": ["10.0.0.1/8"]}),
            "did you mean 10.0.0.0/8",
        ),
        (
            json!({"deny_ranges": ["2001:db8::/129"]}),
            "geo.deny_ranges",
        ),
        (
            json!({"allow_countries": ["DE"], "deny_countries": ["de"]}),
            "DE is also",
        ),
        (json!({"unknown": "maybe"}), "geo.unknown"),
        (json!({"allowed_countries": ["DE"]}), "allowed_countries"),
    ] {
        let res = app
            .put_show(
                "bad",
                json!({
                    "title": "Bad",
                    "starts_at": fmt(now),
                    "ends_at": fmt(now + time::Duration::hours(1)),
                    "stream_path": "demo",
                    "geo": geo,
                }),
            )
            .await;
        let body = assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            body["detail"].as_str().unwrap_or("").contains(needle),
            "{geo}: {body}"
        );
    }
    // a show without `geo` reads back with the open policy
    let show = app.open_show("open", 1, "newest_wins").await;
    assert_eq!(show["geo"]["allow_countries"], json!([]));
    assert_eq!(show["geo"]["unknown"], "allow");
    app.shutdown().await;
}

#[tokio::test]
async fn the_geoip_api_shows_uploads_and_reloads_the_database() {
    let app = geo_app(true).await;
    // scopes
    let res = app.get_with("/api/v1/geoip", &app.tickets_key).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let status: Value = admin(&app, reqwest::Method::GET, "/api/v1/geoip")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["loaded"], true, "{status}");
    let db = &status["database"];
    assert_eq!(db["database_type"], "GeoIP2-Country");
    assert_eq!(db["built_at"], "2026-01-01T00:00:00Z");
    assert!(db["network_count"].as_u64().unwrap() > 0);
    assert!(db["node_count"].as_u64().unwrap() > 0);
    assert_eq!(db["source"]["kind"], "file");
    assert!(status["last_reload"]["at"].is_string());
    assert_eq!(status["last_error"], Value::Null);

    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let (_, token) = app.ticket("de-only").await;
    assert_eq!(
        admit_from(&app, &token, "device-up-0001", DE)
            .await
            .status(),
        StatusCode::CREATED
    );

    // upload next month's edition: 192.0.2.0/24 is now in Austria
    let v2 = std::fs::read(fixture("GeoIP2-Country-Test-v2.mmdb")).unwrap();
    let res = admin(&app, reqwest::Method::PUT, "/api/v1/geoip")
        .await
        .header("content-type", "application/octet-stream")
        .body(v2.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let up: Value = res.json().await.unwrap();
    assert_eq!(up["outcome"], "swapped");
    assert_eq!(up["database"]["source"]["kind"], "upload");
    assert_eq!(up["database"]["built_at"], "2026-02-01T00:00:00Z");
    let body = assert_problem(
        admit_from(&app, &token, "device-up-0002", DE).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "AT");

    // a truncated upload is refused; v2 keeps serving
    let res = admin(&app, reqwest::Method::PUT, "/api/v1/geoip")
        .await
        .body(v2[..v2.len() / 3].to_vec())
        .send()
        .await
        .unwrap();
    let body = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "geoip_refused").await;
    assert!(
        body["detail"].as_str().unwrap().contains("MaxMind DB"),
        "{body}"
    );
    let status: Value = admin(&app, reqwest::Method::GET, "/api/v1/geoip")
        .await
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["database"]["built_at"], "2026-02-01T00:00:00Z");
    assert_eq!(status["last_error"]["outcome"], "invalid");
    assert_eq!(status["last_error"]["source"]["kind"], "upload");

    // the upload was kept at geoip.path: reloading the file finds the same database
    let res = admin(&app, reqwest::Method::POST, "/api/v1/geoip/reload")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["outcome"], "unchanged");
    // no download URL configured
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/geoip/reload?source=download",
    )
    .await
    .send()
    .await
    .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/geoip/reload?source=ftp",
    )
    .await
    .send()
    .await
    .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = admin(&app, reqwest::Method::PUT, "/api/v1/geoip")
        .await
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    app.shutdown().await;
}

#[tokio::test]
async fn readyz_waits_for_a_database_while_shows_have_geo_rules() {
    let app = spawn_app_with(|cfg| {
        cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let ready = |app: &TestApp| {
        let (c, u) = (app.client.clone(), app.url("/readyz"));
        async move { c.get(u).send().await.unwrap() }
    };
    assert_eq!(ready(&app).await.status(), StatusCode::OK);
    // ranges alone need no database
    geo_show(&app, "ranged", json!({"deny_ranges": ["203.0.113.0/24"]})).await;
    assert_eq!(ready(&app).await.status(), StatusCode::OK);

    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let res = ready(&app).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json::<Value>().await.unwrap()["geoip"], "missing");
    let (_, token) = app.ticket("de-only").await;
    assert_problem(
        admit_from(&app, &token, "device-nodb-01", DE).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "geo_unavailable",
    )
    .await;

    let res = admin(&app, reqwest::Method::PUT, "/api/v1/geoip")
        .await
        .body(std::fs::read(fixture("GeoIP2-Country-Test.mmdb")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(ready(&app).await.status(), StatusCode::OK);
    assert_eq!(
        admit_from(&app, &token, "device-nodb-01", DE)
            .await
            .status(),
        StatusCode::CREATED
    );
    app.shutdown().await;
}
