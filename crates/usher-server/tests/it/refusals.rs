//! Every refusal a player's session can meet, on every call that controls or uses one (issue 23, finding
//! 6: each code the API document promises is answered by a test): the API's heartbeat, leave and
//! `DELETE`, the native player's master playlist and steering manifest, the key endpoint and the
//! origin. A session is made to meet each reason for real — unknown, a wrong secret, a copied one, left,
//! revoked, its lease run out, its show's window closed, its show's Geo policy changed — and each call
//! then gets that reason with its exact status (the key endpoint answers 403 with the reason as its
//! code). The answer-checking proxy holds every answer to the document.
//!
//! The admin refusals that need a state to reach (the last admin, an empty CDN pool, a backup on Redis,
//! a GeoIP file over its limit or broken) are here too.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, assert_problem, spawn_app_on, spawn_app_with};

/// A syntactically valid secret that is no session's.
const WRONG_SECRET: &str = "AAAAAAAAAAAAAAAAAAAAAA";
/// Any content-key id: the key endpoint checks the session before it looks the key up.
const KEY_ID: &str = "ck_01010101010101010101010101010101";

/// A player's seat: its session, current secret and origin grant.
struct Seat {
    session: String,
    secret: String,
    grant: String,
}

/// An app behind a trusted proxy (127.0.0.1), so tests choose the viewer's address; no GeoIP database.
async fn proxied_app() -> TestApp {
    spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await
}

/// A show open now on `folder` with one device, heartbeats every second, the given lease and end.
async fn show(
    app: &TestApp,
    id: &str,
    folder: &str,
    lease_s: u32,
    ends_in: time::Duration,
) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let body = json!({
        "title": format!("Show {id}"),
        "starts_at": crate::support::rfc3339(now - time::Duration::hours(1)),
        "ends_at": crate::support::rfc3339(now + ends_in),
        "stream_path": folder,
        "heartbeat_interval_s": 1,
        "lease_ttl_s": lease_s,
        "grant_ttl_s": 3600,
    });
    let res = app.put_show(id, body.clone()).await;
    assert!(res.status().is_success(), "put show {id}: {}", res.status());
    body
}

async fn admit_from(app: &TestApp, token: &str, device: &str, from: &str) -> Seat {
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", device)
        .header("x-forwarded-for", from)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    let grant = v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cdn"] == "origin")
        .expect("an origin grant")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    Seat {
        session: v["session_id"].as_str().unwrap().to_owned(),
        secret: v["session_secret"].as_str().unwrap().to_owned(),
        grant,
    }
}

/// `method path` for `session` presenting `secret`, from `from`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &str,
    secret: &str,
    from: &str,
) -> Response {
    app.client
        .request(method, app.url(path))
        .header("x-usher-session", session)
        .header("x-usher-session-secret", secret)
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

/// The calls of a session's player, each with the status it answers `code` with.
#[derive(Clone, Copy, Debug)]
enum Call {
    Heartbeat,
    Leave,
    Delete,
    Master,
    Steering,
    Key,
}

impl Call {
    fn request(self, session: &str) -> (Method, String) {
        match self {
            Call::Heartbeat => (
                Method::POST,
                format!("/api/v1/playback/{session}/heartbeat"),
            ),
            Call::Leave => (Method::POST, format!("/api/v1/playback/{session}/leave")),
            Call::Delete => (Method::DELETE, format!("/api/v1/playback/{session}")),
            Call::Master => (Method::GET, format!("/hls/{session}/master.m3u8")),
            Call::Steering => (Method::GET, format!("/hls/{session}/steering.json")),
            Call::Key => (Method::GET, format!("/keys/{KEY_ID}")),
        }
    }
}

/// Asserts that `call` for `session` with `secret` from `from` is refused with `code` at `status` (the
/// key endpoint: 403 whatever the reason, but for what a retry cures).
async fn refused(
    app: &TestApp,
    what: Call,
    session: &str,
    secret: &str,
    from: &str,
    status: StatusCode,
    code: &str,
) {
    let (method, path) = what.request(session);
    let status = match what {
        Call::Key if status != StatusCode::SERVICE_UNAVAILABLE => StatusCode::FORBIDDEN,
        _ => status,
    };
    let res = call(app, method, &path, session, secret, from).await;
    let got = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["code"].as_str()),
        (status, Some(code)),
        "{what:?} ({path}): {body}"
    );
}

const HERE: &str = "192.0.2.10";

#[tokio::test]
async fn every_session_call_names_why_it_is_refused() {
    let app = proxied_app().await;
    show(&app, "plain", "demo", 60, time::Duration::hours(2)).await;
    let gone = StatusCode::GONE;
    let forbidden = StatusCode::FORBIDDEN;
    let not_found = StatusCode::NOT_FOUND;

    // a session no one holds: every call says so (the key endpoint too, as a refusal)
    let nobody = format!("s_{}", "0".repeat(32));
    for what in [
        Call::Heartbeat,
        Call::Leave,
        Call::Delete,
        Call::Master,
        Call::Steering,
        Call::Key,
    ] {
        refused(
            &app,
            what,
            &nobody,
            WRONG_SECRET,
            HERE,
            not_found,
            "session_unknown",
        )
        .await;
    }

    // a session that plays, and a secret that is not its own; an admit presenting one that cannot be a
    // secret at all is refused before anything is looked up
    let (_, token) = app.ticket("plain").await;
    let a = admit_from(&app, &token, "device-refusal-a", HERE).await;
    for what in [
        Call::Heartbeat,
        Call::Leave,
        Call::Delete,
        Call::Master,
        Call::Steering,
        Call::Key,
    ] {
        refused(
            &app,
            what,
            &a.session,
            WRONG_SECRET,
            HERE,
            forbidden,
            "session_secret_invalid",
        )
        .await;
    }
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", "device-refusal-a")
        .header("x-forwarded-for", HERE)
        .header("x-usher-session-secret", "not a secret")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_problem(res, forbidden, "session_secret_invalid").await;

    // a copy: the secret two renewals back is a superseded one, and the session plays on for its holder
    let mut secrets = vec![a.secret.clone()];
    for _ in 0..2 {
        let res = call(
            &app,
            Method::POST,
            &format!("/api/v1/playback/{}/heartbeat", a.session),
            &a.session,
            secrets.last().unwrap(),
            HERE,
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        secrets.push(v["session_secret"].as_str().unwrap().to_owned());
    }
    for what in [Call::Heartbeat, Call::Leave, Call::Delete] {
        refused(
            &app,
            what,
            &a.session,
            &secrets[0],
            HERE,
            StatusCode::CONFLICT,
            "session_cloned",
        )
        .await;
    }
    let current = secrets.last().unwrap();
    let res = call(
        &app,
        Method::GET,
        &format!("/hls/{}/master.m3u8", a.session),
        &a.session,
        current,
        HERE,
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK, "the holder still plays");

    // left: every call is told the session ended
    let res = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/playback/{}", a.session),
        &a.session,
        current,
        HERE,
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for what in [Call::Heartbeat, Call::Master, Call::Steering, Call::Key] {
        refused(&app, what, &a.session, current, HERE, gone, "session_ended").await;
    }

    // revoked
    let (ticket, token) = app.ticket("plain").await;
    let b = admit_from(&app, &token, "device-refusal-b", HERE).await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{ticket}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "revoke: {}", res.status());
    for what in [Call::Master, Call::Key] {
        refused(
            &app,
            what,
            &b.session,
            &b.secret,
            HERE,
            forbidden,
            "ticket_revoked",
        )
        .await;
    }

    // a show whose folder does not exist: the master playlist has nothing to serve
    show(
        &app,
        "no-media",
        "no-such-folder",
        60,
        time::Duration::hours(2),
    )
    .await;
    let (_, token) = app.ticket("no-media").await;
    let c = admit_from(&app, &token, "device-refusal-c", HERE).await;
    refused(
        &app,
        Call::Master,
        &c.session,
        &c.secret,
        HERE,
        not_found,
        "media_unknown",
    )
    .await;

    // Geo asked of a node without a GeoIP database: the show's policy now names countries
    let mut later = show(&app, "geo-later", "demo", 60, time::Duration::hours(2)).await;
    let (_, token) = app.ticket("geo-later").await;
    let d = admit_from(&app, &token, "device-refusal-d", HERE).await;
    later["geo"] = json!({"allow_countries": ["DE"]});
    assert!(app.put_show("geo-later", later).await.status().is_success());
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    for what in [Call::Master, Call::Key] {
        refused(
            &app,
            what,
            &d.session,
            &d.secret,
            HERE,
            unavailable,
            "geo_unavailable",
        )
        .await;
    }
    // the origin asks Geo again for a request from another address than the grant's
    let res = app
        .client
        .get(app.url(&format!("/o/{}/demo/master.m3u8", d.grant)))
        .header("x-forwarded-for", "192.0.2.11")
        .send()
        .await
        .unwrap();
    assert_problem(res, unavailable, "geo_unavailable").await;

    // a lease that ran out (two seconds without a heartbeat), and a window that closed
    show(&app, "short-lease", "demo", 2, time::Duration::hours(2)).await;
    show(&app, "closing", "demo", 60, time::Duration::seconds(3)).await;
    let (_, token) = app.ticket("short-lease").await;
    let e = admit_from(&app, &token, "device-refusal-e", HERE).await;
    let (_, token) = app.ticket("closing").await;
    let f = admit_from(&app, &token, "device-refusal-f", HERE).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    for what in [Call::Heartbeat, Call::Master, Call::Steering, Call::Key] {
        refused(
            &app,
            what,
            &e.session,
            &e.secret,
            HERE,
            gone,
            "session_expired",
        )
        .await;
    }
    for what in [Call::Heartbeat, Call::Steering, Call::Key] {
        refused(&app, what, &f.session, &f.secret, HERE, gone, "ended").await;
    }
    app.shutdown().await;
}

/// Geo on renewal and on key requests: a viewer admitted in Germany who moves to France.
#[tokio::test]
async fn a_viewer_who_moves_out_of_the_shows_countries_is_refused_by_steering_and_keys() {
    let app = spawn_app_with(|c| {
        let path = c.data_dir.join("geo").join("db.mmdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(geo_fixture(), &path).unwrap();
        c.geoip.path = Some(path);
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let mut body = show(&app, "de-only", "demo", 60, time::Duration::hours(2)).await;
    body["geo"] = json!({"allow_countries": ["DE"]});
    assert!(app.put_show("de-only", body).await.status().is_success());
    let (_, token) = app.ticket("de-only").await;
    let de = "192.0.2.10";
    let fr = "198.51.100.10";
    let seat = admit_from(&app, &token, "device-geo-a", de).await;
    // the key endpoint does not end the session; the steering reload, a renewal, does
    refused(
        &app,
        Call::Key,
        &seat.session,
        &seat.secret,
        fr,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    refused(
        &app,
        Call::Steering,
        &seat.session,
        &seat.secret,
        fr,
        StatusCode::FORBIDDEN,
        "geo_blocked",
    )
    .await;
    app.shutdown().await;
}

fn geo_fixture() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../usher-geo/tests/fixtures/GeoIP2-Country-Test.mmdb")
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// The admin refusals that need a state to reach.
#[tokio::test]
async fn admin_refusals_that_need_a_state() {
    let app = spawn_app_with(|c| {
        let path = c.data_dir.join("geo").join("db.mmdb");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(geo_fixture(), &path).unwrap();
        c.geoip.path = Some(path);
        c.geoip.max_bytes = 1024 * 1024;
    })
    .await;

    // the last admin cannot be demoted
    let res = admin(
        &app,
        Method::POST,
        "/api/v1/admin-users",
        Some(json!({"name": "ada", "role": "admin", "password": "a-long-enough-password"})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let users: Value = admin(&app, Method::GET, "/api/v1/admin-users", None)
        .await
        .json()
        .await
        .unwrap();
    let admins: Vec<String> = users["admin_users"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == "admin")
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    let (last, others) = admins.split_last().expect("an admin");
    for name in others {
        let res = admin(
            &app,
            Method::PATCH,
            &format!("/api/v1/admin-users/{name}"),
            Some(json!({"role": "observer"})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "demote {name}");
    }
    let res = admin(
        &app,
        Method::PATCH,
        &format!("/api/v1/admin-users/{last}"),
        Some(json!({"role": "support"})),
    )
    .await;
    assert_problem(res, StatusCode::CONFLICT, "last_admin").await;

    // a pool with one enabled CDN cannot lose it, by PATCH or by PUT
    let edge = json!({
        "name": "Edge A",
        "base_url": "https://edge-a.example",
        "signing": {"scheme": "nginx", "secret": "a-secret-of-some-length"},
    });
    let res = admin(&app, Method::PUT, "/api/v1/cdns/edge-a", Some(edge.clone())).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = admin(
        &app,
        Method::PATCH,
        "/api/v1/cdns/origin",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut off = edge;
    off["enabled"] = json!(false);
    let res = admin(&app, Method::PUT, "/api/v1/cdns/edge-a", Some(off)).await;
    assert_problem(res, StatusCode::CONFLICT, "cdn_pool_empty").await;

    // a GeoIP upload over geoip.max_bytes, and a reload of a file that is no database
    let res = app
        .client
        .put(app.url("/api/v1/geoip"))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    std::fs::write(
        app.state.config.data_dir.join("geo").join("db.mmdb"),
        b"not a MaxMind database",
    )
    .unwrap();
    let res = admin(&app, Method::POST, "/api/v1/geoip/reload", None).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "geoip_refused").await;
    app.shutdown().await;

    // Redis keeps its own backups: Usher's is refused
    let app = spawn_app_on(Backend::Redis).await;
    let res = admin(&app, Method::POST, "/api/v1/backup", None).await;
    assert_problem(res, StatusCode::CONFLICT, "backup_unsupported").await;
    app.shutdown().await;
}
