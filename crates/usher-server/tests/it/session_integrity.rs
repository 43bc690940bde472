//! One seat, one player (issue 14, DESIGN.md "Session integrity"), on the real server and on both stores:
//! a device id alone never re-attaches a second player, a session id alone controls nothing, a copied
//! cookie jar or player URL is stopped within two renewals while a reload keeps playing, and a revoke
//! racing admits and heartbeats leaves nothing playing once it has answered.
//!
//! Requests with explicit credentials go through the answer-checking proxy; the attacker who holds only a
//! session id talks to the app directly (the proxy would lend it the session's secret).

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, assert_problem, spawn_app_on};

/// Each case once per store.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Backend::Embedded).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Backend::Redis).await
                }
            )*
        }
    };
}

on_both_stores!(
    a_device_id_alone_never_reattaches,
    a_session_id_alone_controls_nothing,
    a_copied_cookie_jar_is_stopped_and_a_reload_keeps_playing,
    a_copied_player_url_is_stopped_by_the_steering_chain,
    a_revoke_racing_admits_and_heartbeats_leaves_nothing_playing,
);

/// A browser's cookies, as a browser keeps them (name → value; attributes ignored).
#[derive(Clone, Default, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, res: &Response) {
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let pair = v.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.0
                .insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A browser on the watch page: its cookie jar, and the session its page plays.
#[derive(Clone)]
struct Browser {
    jar: Jar,
    session: String,
}

impl Browser {
    /// Opens the watch link and lets the page admit (ticket from the cookie, no body).
    async fn open(app: &TestApp, token: &str) -> (Self, Value) {
        let mut jar = Jar::default();
        let res = app
            .client
            .get(app.url(&format!("/watch/{token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        jar.take(&res);
        let mut b = Self {
            jar,
            session: String::new(),
        };
        let (status, v) = b.admit(app).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        (b, v)
    }

    async fn admit(&mut self, app: &TestApp) -> (StatusCode, Value) {
        let res = app
            .client
            .post(app.url("/api/v1/playback"))
            .header(COOKIE, self.jar.header())
            .send()
            .await
            .unwrap();
        self.jar.take(&res);
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        if let Some(s) = v["session_id"].as_str() {
            self.session = s.to_owned();
        }
        (status, v)
    }

    async fn heartbeat(&mut self, app: &TestApp) -> (StatusCode, Value) {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/playback/{}/heartbeat", self.session)))
            .header(COOKIE, self.jar.header())
            .send()
            .await
            .unwrap();
        self.jar.take(&res);
        (res.status(), res.json().await.unwrap())
    }
}

/// An app's admit (`{"token": …}`) as `device`, presenting `secret` if given.
async fn app_admit(
    app: &TestApp,
    token: &str,
    device: &str,
    secret: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", device)
        .json(&json!({"token": token}));
    if let Some(s) = secret {
        req = req.header("x-usher-session-secret", s);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

/// An app's heartbeat with `secret`.
async fn app_heartbeat(app: &TestApp, session: &str, secret: &str) -> (StatusCode, Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/playback/{session}/heartbeat")))
        .header("x-usher-session-secret", secret)
        .send()
        .await
        .unwrap();
    (res.status(), res.json().await.unwrap())
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

/// Finding 1: two players sending one device id (an app header, or a copied `usher_device` cookie) do not
/// share a session: the second is a new claim on the seat, and the first is superseded.
async fn a_device_id_alone_never_reattaches(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (ticket_id, token) = app.ticket("gig").await;
    let (status, first) = app_admit(&app, &token, "livingroomtv01", None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = app_admit(&app, &token, "livingroomtv01", None).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["reattached"], false, "{second}");
    assert_ne!(second["session_id"], first["session_id"]);
    let (status, hb) = app_heartbeat(
        &app,
        str_of(&first, "session_id"),
        str_of(&first, "session_secret"),
    )
    .await;
    assert_eq!(
        (status, hb["code"].as_str()),
        (StatusCode::CONFLICT, Some("superseded"))
    );
    // a browser whose usher_device cookie was copied into another browser: the same
    let (mut a, _) = Browser::open(&app, &token).await;
    let mut b = Browser::open(&app, &token).await.0;
    b.jar
        .0
        .insert("usher_device".into(), a.jar.0["usher_device"].clone());
    let (status, v) = b.admit(&app).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["reattached"], false, "{v}");
    let (status, hb) = a.heartbeat(&app).await;
    assert_eq!(
        (status, hb["code"].as_str()),
        (StatusCode::CONFLICT, Some("superseded")),
        "{hb}"
    );
    let usage = app.ticket_status(&ticket_id).await;
    assert_eq!(usage["usage"]["active_sessions"], 1, "{usage}");
    app.shutdown().await;
}

/// Finding 2: a session id is a handle, not a credential: without the secret no call controls the
/// session (heartbeat, master playlist, steering, leave), a wrong secret is refused, the session plays on,
/// and ending it is an admin's audited call.
async fn a_session_id_alone_controls_nothing(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let (_, admitted) = app_admit(&app, &token, "device-owner-01", None).await;
    let sid = str_of(&admitted, "session_id").to_owned();
    let secret = str_of(&admitted, "session_secret").to_owned();
    // the attacker talks to the app directly, holding only the id
    let direct = |path: &str| format!("http://{}{path}", app.addr);
    let attempts = [
        ("POST", format!("/api/v1/playback/{sid}/heartbeat")),
        ("GET", format!("/hls/{sid}/master.m3u8")),
        ("GET", format!("/hls/{sid}/steering.json")),
        ("DELETE", format!("/api/v1/playback/{sid}")),
        ("POST", format!("/api/v1/playback/{sid}/leave")),
    ];
    for (method, path) in &attempts {
        let m: reqwest::Method = method.parse().unwrap();
        let res = app
            .client
            .request(m.clone(), direct(path))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("session_secret_required")),
            "{method} {path} with the id alone"
        );
        let res = app
            .client
            .request(m, direct(path))
            .header("x-usher-session-secret", "AAAAAAAAAAAAAAAAAAAAAA")
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::FORBIDDEN, "session_secret_invalid").await;
        let res = app
            .client
            .get(direct(&format!(
                "/hls/{sid}/master.m3u8?secret=not-a-secret"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    // the owner plays on
    let (status, hb) = app_heartbeat(&app, &sid, &secret).await;
    assert_eq!(status, StatusCode::OK, "{hb}");
    // an admin ends it, and the audit log says who
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/sessions/{sid}")))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let audit: Value = app
        .client
        .get(app.url("/api/v1/audit?action=session.end"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit.to_string().contains(&format!("session:{sid}")),
        "{audit}"
    );
    let next = str_of(&hb, "session_secret");
    let (status, v) = app_heartbeat(&app, &sid, next).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::GONE, Some("session_ended"))
    );
    app.shutdown().await;
}

/// Two browsers sharing one cookie jar (a copy): within two heartbeats of each, one is refused with
/// `session_cloned` and the other plays on; the ticket's usage and sharing signal record it. A reload of
/// the first browser (its own cookies) re-attaches to its session.
async fn a_copied_cookie_jar_is_stopped_and_a_reload_keeps_playing(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (ticket_id, token) = app.ticket("gig").await;
    let (mut a, admitted) = Browser::open(&app, &token).await;
    assert!(
        admitted.get("session_secret").is_none(),
        "the page's secret is only in its cookie: {admitted}"
    );
    assert!(!str_of(&admitted, "playlist_url").contains("secret="));
    let mut b = a.clone();
    let mut refused = Vec::new();
    for round in 0..2 {
        for (name, browser) in [("a", &mut a), ("b", &mut b)] {
            let (status, v) = browser.heartbeat(&app).await;
            match status {
                StatusCode::OK => {}
                StatusCode::CONFLICT if v["code"] == "session_cloned" => {
                    refused.push((round, name))
                }
                other => panic!("round {round}, {name}: {other} {v}"),
            }
        }
    }
    assert_eq!(
        refused,
        [(1, "b")],
        "exactly one of the two is stopped, within two heartbeats each"
    );
    let (status, _) = a.heartbeat(&app).await;
    assert_eq!(status, StatusCode::OK, "the other plays on");
    let (status, v) = b.heartbeat(&app).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("session_cloned"))
    );
    // its leave beacon cannot end the first one's session either
    let res = app
        .client
        .post(app.url(&format!("/api/v1/playback/{}/leave", b.session)))
        .header(COOKIE, b.jar.header())
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::CONFLICT, "session_cloned").await;
    let status = app.ticket_status(&ticket_id).await;
    assert!(status["usage"]["clones"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(status["sharing"]["level"], "high", "{status}");
    // a reload of the first browser is not a clone
    let before = a.session.clone();
    let (code, v) = a.admit(&app).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        (v["session_id"].as_str(), v["reattached"].as_bool()),
        (Some(before.as_str()), Some(true))
    );
    let (code, _) = a.heartbeat(&app).await;
    assert_eq!(code, StatusCode::OK);
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
        metrics.contains("usher_sessions_cloned_total"),
        "the clones are counted"
    );
    if matches!(backend, Backend::Redis) {
        // the renewals the node decided went in transactions; the clone's went to the script, which
        // records it (redis/renewal.rs); the ticket's first play went to the admit script, the reload's
        // re-attachment was a transaction (redis/admission.rs)
        let counted = |metric: &str, labels: &[&str]| {
            metrics.lines().any(|l| {
                l.starts_with(&format!("{metric}{{"))
                    && labels.iter().all(|x| l.contains(x))
                    && !l.ends_with(" 0")
            })
        };
        let renewals = "usher_redis_renewals_total";
        let admits = "usher_redis_admits_total";
        assert!(counted(renewals, &["way=\"transaction\""]), "{metrics}");
        assert!(
            counted(renewals, &["way=\"script\"", "reason=\"clone\""]),
            "{metrics}"
        );
        assert!(counted(admits, &["way=\"transaction\""]), "{metrics}");
        assert!(
            counted(admits, &["way=\"script\"", "reason=\"first_play\""]),
            "{metrics}"
        );
    }
    app.shutdown().await;
}

/// A native player renews by its steering reloads with the secret in the URL: each reload hands the next
/// secret in `RELOAD-URI`. A second player given a copy of the playlist URL falls out of step and is
/// refused; the first keeps reloading.
async fn a_copied_player_url_is_stopped_by_the_steering_chain(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let (_, admitted) = app_admit(&app, &token, "device-native-1", None).await;
    let playlist = str_of(&admitted, "playlist_url").to_owned();
    let get = |url: String| {
        let client = app.client.clone();
        let full = app.url(&url);
        async move { client.get(full).send().await.unwrap() }
    };
    let res = get(playlist.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let master = res.text().await.unwrap();
    let server_uri = master
        .split("SERVER-URI=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("content steering in the master")
        .to_owned();
    assert!(server_uri.contains("secret="), "{server_uri}");
    // both players hold the same steering URL; they reload in turn
    let mut uris = [server_uri.clone(), server_uri];
    let mut refused = Vec::new();
    for round in 0..2 {
        for (i, uri) in uris.iter_mut().enumerate() {
            let res = get(uri.clone()).await;
            let status = res.status();
            let v: Value = res.json().await.unwrap();
            match status {
                StatusCode::OK => *uri = str_of(&v, "RELOAD-URI").to_owned(),
                StatusCode::CONFLICT if v["code"] == "session_cloned" => refused.push((round, i)),
                other => panic!("round {round}, player {i}: {other} {v}"),
            }
        }
    }
    assert_eq!(refused, [(1, 1)]);
    assert_eq!(get(uris[0].clone()).await.status(), StatusCode::OK);
    // the copied master URL is stale too by now
    let res = get(playlist).await;
    assert_problem(res, StatusCode::CONFLICT, "session_cloned").await;
    app.shutdown().await;
}

/// Finding 3: a revoke racing admits and heartbeats of its ticket (many trials): once the revoke has
/// answered, no session of the ticket is live, none renews, none is admitted, and the origin serves none.
async fn a_revoke_racing_admits_and_heartbeats_leaves_nothing_playing(backend: Backend) {
    let trials: usize = std::env::var("USHER_REVOKE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let app = Arc::new(spawn_app_on(backend).await);
    app.open_show("gig", 3, "newest_wins").await;
    for trial in 0..trials {
        let (ticket_id, token) = app.ticket("gig").await;
        let racers: Vec<_> = (0..4)
            .map(|r| {
                let (app, token) = (Arc::clone(&app), token.clone());
                tokio::spawn(async move {
                    let mut sessions = Vec::new();
                    for n in 0..3 {
                        let device = format!("racer-{r}-{n}-device");
                        let (status, v) = app_admit(&app, &token, &device, None).await;
                        match status {
                            StatusCode::CREATED => {
                                let sid = str_of(&v, "session_id").to_owned();
                                let secret = str_of(&v, "session_secret").to_owned();
                                let grant = v["grants"][0]["token"].as_str().unwrap().to_owned();
                                let (_, hb) = app_heartbeat(&app, &sid, &secret).await;
                                let secret =
                                    hb["session_secret"].as_str().map_or(secret, str::to_owned);
                                sessions.push((sid, secret, grant));
                            }
                            StatusCode::FORBIDDEN => assert_eq!(v["code"], "ticket_revoked"),
                            other => panic!("admit answered {other}: {v}"),
                        }
                    }
                    sessions
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let res = app
            .client
            .post(app.url(&format!("/api/v1/tickets/{ticket_id}/revoke")))
            .bearer_auth(&app.tickets_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let at_answer = app.ticket_status(&ticket_id).await["usage"]["active_sessions"].clone();
        let mut sessions = Vec::new();
        for r in racers {
            sessions.extend(r.await.unwrap());
        }
        let after = app.ticket_status(&ticket_id).await["usage"]["active_sessions"].clone();
        assert_eq!(
            (at_answer, after),
            (json!(0), json!(0)),
            "trial {trial}: sessions live after the revoke answered"
        );
        for (sid, secret, grant) in &sessions {
            let (status, v) = app_heartbeat(&app, sid, secret).await;
            assert_ne!(
                status,
                StatusCode::OK,
                "trial {trial}: a revoked ticket's session renewed: {v}"
            );
            let res = app
                .client
                .get(app.url(&format!("/o/{grant}/demo/360p/index.m3u8")))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::FORBIDDEN,
                "trial {trial}: the origin served a revoked ticket"
            );
        }
    }
    Arc::into_inner(app).expect("racers done").shutdown().await;
}
