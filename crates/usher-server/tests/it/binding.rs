//! Media bound to where its session plays (issue 14), over real HTTP on the embedded store and on Redis:
//! an origin grant opens media only from its viewer's network (`http.grant_address_prefix_v4`/`_v6`),
//! another address inside that network must pass the show's Geo policy, `0` turns the binding off, and the
//! session's master playlist answers only where the show's Geo policy allows; and a show's stream folder
//! may not nest with another show's, whose grants would then open it.
//!
//! Client addresses come through `X-Forwarded-For` from the trusted proxy 127.0.0.1 (the answer-checking
//! proxy in front of the app). The GeoIP database is the usher-geo fixture: 192.0.2.0/24 and
//! 2001:db8:1::/48 in Germany (Austria in the v2 edition), 198.51.100.0/24 in France, 203.0.113.0/24 in the
//! United States.

use std::path::PathBuf;

use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use usher_server::settings::{Config, RedisSettings, StoreSettings};
use usher_testkit::RedisServer;

use crate::support::{TestApp, assert_problem, spawn_app_with};

const DE: &str = "192.0.2.10";
const DE_NEIGHBOUR: &str = "192.0.2.77";
const FR: &str = "198.51.100.10";
const SEGMENT: &str = "demo/360p/seg_001.ts";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    Redis,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../usher-geo/tests/fixtures")
        .join(name)
}

/// An app on `backend` behind the trusted proxy 127.0.0.1 with the v1 GeoIP fixture, after `tweak`.
/// The Redis server (if any) lives as long as the returned guard.
async fn app_on(
    backend: Backend,
    tweak: impl FnOnce(&mut Config) + Send + 'static,
) -> (TestApp, Option<RedisServer>) {
    let redis = match backend {
        Backend::Embedded => None,
        Backend::Redis => Some(RedisServer::start().expect("redis-server")),
    };
    let url = redis.as_ref().map(RedisServer::url);
    let app = spawn_app_with(move |cfg| {
        let path = cfg.data_dir.join("geo").join("db.mmdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(fixture("GeoIP2-Country-Test.mmdb"), &path).unwrap();
        cfg.geoip.path = Some(path);
        cfg.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        if let Some(url) = url {
            cfg.store = StoreSettings::Redis(RedisSettings {
                url: SecretString::from(url),
                key_prefix: "binding:".into(),
                connect_timeout_ms: 2000,
                response_timeout_ms: 5000,
                wait_replicas: 0,
                wait_timeout_ms: 100,
                sentinel: None,
            });
        }
        tweak(cfg);
    })
    .await;
    (app, redis)
}

/// A show open now on the stream folder `demo` with the Geo policy `geo`.
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

/// Admits a new ticket of `show` from `from`; returns the admit answer.
async fn admit_from(app: &TestApp, show: &str, device: &str, from: &str) -> Value {
    let (_, token) = app.ticket(show).await;
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", device)
        .header("x-forwarded-for", from)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED, "admit from {from}");
    res.json().await.unwrap()
}

/// The origin's grant of an admit answer.
fn origin_grant(admitted: &Value) -> String {
    admitted["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cdn"] == "origin")
        .and_then(|g| g["token"].as_str())
        .expect("an origin grant")
        .to_owned()
}

/// `GET /o/{grant}/{path}` from `from` (`None`: from 127.0.0.1 itself).
async fn media_from(app: &TestApp, grant: &str, path: &str, from: Option<&str>) -> Response {
    let mut req = app.client.get(app.url(&format!("/o/{grant}/{path}")));
    if let Some(from) = from {
        req = req.header("x-forwarded-for", from);
    }
    req.send().await.unwrap()
}

async fn a_grant_opens_media_from_its_network_only(backend: Backend) {
    let (app, _redis) = app_on(backend, |_| {}).await;
    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let grant = origin_grant(&admit_from(&app, "de-only", "device-bind-01", DE).await);

    // the address it was issued to, and another one of its /24 that the show's policy allows
    for from in [DE, DE_NEIGHBOUR] {
        let res = media_from(&app, &grant, SEGMENT, Some(from)).await;
        assert_eq!(res.status(), StatusCode::OK, "{backend:?}: from {from}");
        assert_eq!(res.bytes().await.unwrap()[0], 0x47, "an MPEG-TS sync byte");
    }
    // outside the /24: refused whatever the country, the proxy's own address included
    for from in [Some(FR), Some("192.0.3.10"), Some("2001:db8:1::10"), None] {
        let body = assert_problem(
            media_from(&app, &grant, SEGMENT, from).await,
            StatusCode::FORBIDDEN,
            "grant_refused",
        )
        .await;
        assert_eq!(
            body["detail"], "address outside the grant's network",
            "{backend:?}: from {from:?}"
        );
    }
    // a grant in the query is held to the same network
    let res = app
        .client
        .get(app.url(&format!("/o/stale/{SEGMENT}?usher_grant={grant}")))
        .header("x-forwarded-for", FR)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "grant_refused").await;

    // next month's database puts 192.0.2.0/24 in Austria: inside the /24, another address than the grant's
    // must pass the show's policy again
    let v2 = std::fs::read(fixture("GeoIP2-Country-Test-v2.mmdb")).unwrap();
    let res = app
        .client
        .put(app.url("/api/v1/geoip"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/octet-stream")
        .body(v2)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = assert_problem(
        media_from(&app, &grant, SEGMENT, Some(DE_NEIGHBOUR)).await,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "AT", "{backend:?}: {body}");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_opens_media_from_its_network_only_embedded() {
    a_grant_opens_media_from_its_network_only(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_opens_media_from_its_network_only_redis() {
    a_grant_opens_media_from_its_network_only(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_grant_opens_media_from_its_slash_64_only() {
    let (app, _redis) = app_on(Backend::Embedded, |_| {}).await;
    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let grant =
        origin_grant(&admit_from(&app, "de-only", "device-bind-06", "2001:db8:1::10").await);
    let res = media_from(&app, &grant, SEGMENT, Some("2001:db8:1::99")).await;
    assert_eq!(res.status(), StatusCode::OK);
    // the same /48 (and country), another /64
    assert_problem(
        media_from(&app, &grant, SEGMENT, Some("2001:db8:1:1::10")).await,
        StatusCode::FORBIDDEN,
        "grant_refused",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_lengths_of_0_bind_no_address() {
    let (app, _redis) = app_on(Backend::Embedded, |cfg| {
        cfg.http.grant_address_prefix_v4 = 0;
        cfg.http.grant_address_prefix_v6 = 0;
    })
    .await;
    geo_show(&app, "anywhere", json!({})).await;
    let grant = origin_grant(&admit_from(&app, "anywhere", "device-bind-07", DE).await);
    for from in [Some(DE), Some(FR), Some("2001:db8:2::1"), None] {
        let res = media_from(&app, &grant, SEGMENT, from).await;
        assert_eq!(res.status(), StatusCode::OK, "from {from:?}");
    }
    app.shutdown().await;
}

async fn the_master_playlist_checks_the_shows_geo_policy(backend: Backend) {
    let (app, _redis) = app_on(backend, |_| {}).await;
    geo_show(&app, "de-only", json!({"allow_countries": ["DE"]})).await;
    let admitted = admit_from(&app, "de-only", "device-bind-02", DE).await;
    let playlist = admitted["playlist_url"].as_str().unwrap();
    let from = |addr: &'static str| {
        app.client
            .get(app.url(playlist))
            .header("x-forwarded-for", addr)
            .send()
    };
    let res = from(DE).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{backend:?}");
    assert!(res.text().await.unwrap().starts_with("#EXTM3U"));
    let body = assert_problem(
        from(FR).await.unwrap(),
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    assert_eq!(body["country"], "FR", "{backend:?}");
    // a refused address is not a reason to end the session: its player may still be where it was
    assert_eq!(from(DE).await.unwrap().status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_playlist_checks_the_shows_geo_policy_embedded() {
    the_master_playlist_checks_the_shows_geo_policy(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_playlist_checks_the_shows_geo_policy_redis() {
    the_master_playlist_checks_the_shows_geo_policy(Backend::Redis).await;
}

/// `PUT /api/v1/shows/{id}` of an open show on the stream folder `stream_path`.
async fn put_show_at(app: &TestApp, id: &str, stream_path: &str) -> Response {
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    app.put_show(
        id,
        json!({
            "title": format!("Show {id}"),
            "starts_at": fmt(now - time::Duration::hours(1)),
            "ends_at": fmt(now + time::Duration::hours(2)),
            "stream_path": stream_path,
        }),
    )
    .await
}

async fn nested_stream_folders_are_refused(backend: Backend) {
    let (app, _redis) = app_on(backend, |_| {}).await;
    assert_eq!(
        put_show_at(&app, "full", "demo").await.status(),
        StatusCode::CREATED
    );
    // inside another show's folder
    let body = assert_problem(
        put_show_at(&app, "low", "demo/180p").await,
        StatusCode::CONFLICT,
        "stream_path_nested",
    )
    .await;
    assert_eq!(
        body["detail"], "stream_path lies inside show `full`'s folder `demo`",
        "{backend:?}"
    );
    // around another show's folder
    assert_eq!(
        put_show_at(&app, "deep", "feeds/a/hd").await.status(),
        StatusCode::CREATED
    );
    let body = assert_problem(
        put_show_at(&app, "feeds", "feeds").await,
        StatusCode::CONFLICT,
        "stream_path_nested",
    )
    .await;
    assert_eq!(
        body["detail"],
        "stream_path holds show `deep`'s folder `feeds/a/hd`"
    );
    // the same folder, a sibling whose name starts the same, and a show rewritten in place are fine
    for (id, path) in [
        ("mirror", "demo"),
        ("other", "demoX"),
        ("full", "demo"),
        ("sub", "feeds/ab"),
    ] {
        let res = put_show_at(&app, id, path).await;
        assert!(
            res.status().is_success(),
            "{id} at {path}: {}",
            res.status()
        );
    }
    // an update that moves a show into another's folder is refused, and changes nothing
    assert_problem(
        put_show_at(&app, "other", "demo/360p").await,
        StatusCode::CONFLICT,
        "stream_path_nested",
    )
    .await;
    let res = app
        .get_with("/api/v1/shows/other", &app.admin_key)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(res["stream_path"], "demoX", "{backend:?}");
    let res = app.get_with("/api/v1/shows/low", &app.admin_key).await;
    assert_problem(res, StatusCode::NOT_FOUND, "show_unknown").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_stream_folders_are_refused_embedded() {
    nested_stream_folders_are_refused(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_stream_folders_are_refused_redis() {
    nested_stream_folders_are_refused(Backend::Redis).await;
}
