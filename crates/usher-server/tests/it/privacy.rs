//! Privacy (issue 22), on both stores: a ticket's usage older than `[privacy]` says is truncated and
//! dropped by the node's retention task, newer usage stays; `DELETE /api/v1/tickets/{id}/personal-data`
//! erases a ticket's addresses, countries and devices (a revoked ticket's too), keeps its status and
//! counts, answers again the same way, and the audit log names who erased it; callers without the right
//! get 401/403 (every role and scope: `admin_console.rs`).

use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use usher_core::clock::{Clock as _, ManualClock, SystemClock, UnixMs};
use usher_core::geo::Country;
use usher_core::ids::DeviceId;
use usher_core::lease::{AdmitDecision, SeatRules};
use usher_core::show::SharingPolicy;
use usher_core::store::{AdmitRequest, RegisterOutcome, Store};
use usher_core::ticket::Ticket;
use usher_server::settings::{AddressesAfter, RedisSettings, StoreSettings};
use usher_store::EmbeddedStore;
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::{RedisServer, wait_until};

use crate::support::{Backend, TestApp, assert_problem, spawn_app_on_with, spawn_app_with};

const DAY_MS: i64 = 86_400_000;
/// The Redis key the populating store's scripts read their time from.
const CLOCK_KEY: &str = "it:test-clock";

/// Sets `key` to `value` on the Redis at `port` (one inline command; the tests need no Redis client).
fn redis_set(port: u16, key: &str, value: &str) {
    use std::io::{Read as _, Write as _};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("SET {key} {value}\r\n").as_bytes())
        .unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"+OK"), "SET answered {:?}", &buf[..n]);
}

/// One admit of `device` from `address` in `country` at the store's current time.
async fn admit(store: &dyn Store, t: &Ticket, device: &str, address: &str, country: &str) {
    let decision = store
        .admit(AdmitRequest {
            ticket_id: t.id.clone(),
            show_id: t.terms.show_id.clone(),
            bounds: t.bounds(),
            device_id: DeviceId::parse(device).unwrap(),
            device_label: format!("label of {device}"),
            rules: SeatRules {
                max_devices: 3,
                policy: SharingPolicy::NewestWins,
                ttl_ms: 45_000,
            },
            country: Some(Country::parse(country).unwrap()),
            address: Some(address.parse().unwrap()),
            presented: None,
            fresh: usher_store::contract::seat_secret(),
        })
        .await
        .unwrap();
    assert!(
        matches!(decision, AdmitDecision::Admitted { .. }),
        "{decision:?}"
    );
}

/// A ticket played over 100 days, written straight into `store` whose clock `at` moves (`at(days ago)`):
/// from 203.0.113.5 (FR, device-0001) 100 days ago, from 198.51.100.7 and .9 (DE, device-0002) 40 and 35
/// days ago, from 2001:db8:1:2::5 (DE, device-0003) yesterday.
async fn played_for_100_days(store: &dyn Store, at: impl Fn(i64)) -> Ticket {
    store
        .put_show(usher_store::contract::show(
            "privacy",
            3,
            SharingPolicy::NewestWins,
        ))
        .await
        .unwrap();
    let t = match store
        .register_tickets(vec![usher_store::contract::ticket(
            "privacy",
            "privacy-token-0000001",
            None,
        )])
        .await
        .unwrap()
        .remove(0)
    {
        RegisterOutcome::Created(t) => t,
        other => panic!("{other:?}"),
    };
    at(100);
    admit(store, &t, "device-0001", "203.0.113.5", "FR").await;
    at(40);
    admit(store, &t, "device-0002", "198.51.100.7", "DE").await;
    at(35);
    admit(store, &t, "device-0002", "198.51.100.9", "DE").await;
    at(1);
    admit(store, &t, "device-0003", "2001:db8:1:2::5", "DE").await;
    store.flush().await.unwrap();
    t
}

/// `[privacy]` as the retention test sets it: addresses exact for 30 days, usage kept 90.
fn privacy(c: &mut usher_server::settings::Config) {
    c.privacy.addresses_keep_days = 30;
    c.privacy.addresses_after = AddressesAfter::Truncate;
    c.privacy.usage_keep_days = 90;
}

/// An app on `backend` whose store holds [`played_for_100_days`]'s ticket, written before the app
/// started; the app's retention task runs at start. Returns the app, the ticket and what must outlive
/// the app (the data directory, the Redis).
async fn app_with_old_usage(backend: Backend) -> (TestApp, Ticket, Box<dyn std::any::Any>) {
    let real_now = SystemClock.now().0;
    let clock = ManualClock::new(UnixMs(real_now - 100 * DAY_MS));
    match backend {
        Backend::Embedded => {
            let dir = tempfile::tempdir().unwrap();
            let t = {
                let store = EmbeddedStore::open(dir.path(), Arc::new(clock.clone())).unwrap();
                let move_to = |days_ago: i64| {
                    let now = clock.now().0;
                    clock.advance_ms(real_now - days_ago * DAY_MS - now);
                };
                played_for_100_days(&store, move_to).await
            };
            let data = dir.path().to_owned();
            let app = spawn_app_with(move |c| {
                c.data_dir = data;
                privacy(c);
            })
            .await;
            (app, t, Box::new(dir))
        }
        Backend::Redis => {
            let (redis, port) = RedisServer::start_tcp().expect("redis-server");
            let url = format!("redis://127.0.0.1:{port}");
            let t = {
                let store = RedisStore::connect(RedisConfig {
                    url: url.clone(),
                    key_prefix: "it:".into(),
                    connect_timeout: Duration::from_secs(2),
                    response_timeout: Duration::from_secs(5),
                    wait_replicas: 0,
                    wait_timeout: Duration::from_millis(100),
                    sentinel: None,
                })
                .await
                .unwrap()
                .with_test_clock(Arc::new(clock.clone()), CLOCK_KEY);
                let move_to = |days_ago: i64| {
                    let now = clock.now().0;
                    clock.advance_ms(real_now - days_ago * DAY_MS - now);
                    redis_set(port, CLOCK_KEY, &clock.now().0.to_string());
                };
                played_for_100_days(&store, move_to).await
            };
            let app = spawn_app_with(move |c| {
                c.store = StoreSettings::Redis(RedisSettings {
                    url: SecretString::from(url),
                    key_prefix: "it:".into(),
                    connect_timeout_ms: 2_000,
                    response_timeout_ms: 5_000,
                    wait_replicas: 0,
                    wait_timeout_ms: 100,
                    sentinel: None,
                });
                privacy(c);
            })
            .await;
            (app, t, Box::new(redis))
        }
    }
}

fn texts(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_str().unwrap().to_owned())
        .collect()
}

async fn usage_past_its_retention_is_truncated_and_dropped(backend: Backend) {
    let (app, t, _keep) = app_with_old_usage(backend).await;
    let usage = wait_until(
        Duration::from_secs(20),
        "the retention task to apply [privacy]",
        || async {
            let v = app.ticket_status(t.id.as_str()).await;
            let usage = v["usage"].clone();
            (usage["addresses"].as_array()?.len() == 2).then_some(usage)
        },
    )
    .await
    .unwrap();
    // 203.0.113.5 (100 days) went with its usage; .7 and .9 (40 and 35 days) became one /24, first seen
    // 40 days ago and last seen 35; yesterday's address stays exact
    assert_eq!(
        texts(&usage["addresses"], "address"),
        ["198.51.100.0/24", "2001:db8:1:2::5"],
        "{usage}"
    );
    let net = &usage["addresses"][0];
    let day = |v: &Value| {
        let at = time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        (time::OffsetDateTime::now_utc() - at).whole_days()
    };
    assert_eq!(
        (day(&net["first_seen_at"]), day(&net["last_seen_at"])),
        (40, 35),
        "{net}"
    );
    // FR and device-0001 were last seen 100 days ago: past usage_keep_days
    assert_eq!(texts(&usage["countries"], "country"), ["DE"], "{usage}");
    assert_eq!(
        texts(&usage["device_history"], "label"),
        ["label of device-0002", "label of device-0003"],
        "{usage}"
    );
    // the counts and times are the seller's: they stay
    assert_eq!(usage["sessions"], 4);
    assert_eq!(day(&usage["first_play_at"]), 100);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_past_its_retention_is_truncated_and_dropped_embedded() {
    usage_past_its_retention_is_truncated_and_dropped(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_past_its_retention_is_truncated_and_dropped_redis() {
    usage_past_its_retention_is_truncated_and_dropped(Backend::Redis).await;
}

/// An admit from `address` (through the test proxy, a trusted one) of `device`.
async fn admit_from(app: &TestApp, token: &str, device: &str, address: &str) -> Value {
    let res = app
        .client
        .post(app.url("/api/v1/playback"))
        .header("x-usher-device", device)
        .header("x-usher-device-label", format!("label of {device}"))
        .header("x-forwarded-for", address)
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

async fn erase(app: &TestApp, id: &str, key: &str) -> reqwest::Response {
    app.delete_with(&format!("/api/v1/tickets/{id}/personal-data"), key)
        .await
}

async fn erasure_removes_personal_data_and_is_audited(backend: Backend) {
    // the test proxy stands in for a trusted proxy, so each admit may name its client address
    let app = spawn_app_on_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.open_show("erase", 1, "newest_wins").await;
    let (id, token) = app.ticket("erase").await;
    admit_from(&app, &token, "device-0001", "198.51.100.7").await;
    let live = admit_from(&app, &token, "device-0002", "2001:db8::2").await;
    let before = app.ticket_status(&id).await;
    assert_eq!(
        texts(&before["usage"]["addresses"], "address"),
        ["198.51.100.7", "2001:db8::2"]
    );

    let res = erase(&app, &id, &app.tickets_key).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["ticket_id"], id.as_str());
    assert_eq!(answer["status"], "active");
    assert_eq!(
        answer["erased"],
        // device 1's seat went to device 2: the live label and "superseded by" device 2's label
        json!({"addresses": 2, "countries": 0, "devices": 2, "sessions": 2}),
        "{answer}"
    );
    assert_eq!(answer["live_sessions"], 1);

    let after = app.ticket_status(&id).await;
    let usage = &after["usage"];
    assert_eq!(usage["addresses"], json!([]), "{after}");
    assert_eq!(usage["countries"], json!([]));
    assert_eq!(usage["device_history"], json!([]));
    assert_eq!(usage["devices"], 0);
    assert_eq!(after["status"], "active");
    assert_eq!(after["sharing"]["devices"], 0);
    // the seller's accounting stays
    assert_eq!(usage["sessions"], before["usage"]["sessions"]);
    assert_eq!(usage["first_play_at"], before["usage"]["first_play_at"]);
    assert_eq!(after["created_at"], before["created_at"]);
    // the viewer playing now keeps the seat, without a label
    assert_eq!(usage["live_sessions"][0]["session_id"], live["session_id"]);
    assert_eq!(usage["live_sessions"][0]["device_label"], "");

    // audited, naming the key that erased it and no personal data
    let audit: Value = app
        .get_with(
            "/api/v1/audit?action=ticket.erase_personal_data",
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    let e = &entries[0];
    assert_eq!(e["target"], format!("ticket:{id}"));
    assert_eq!(e["actor"]["kind"], "api_key");
    let site_key = app
        .state
        .store
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "site")
        .unwrap();
    assert_eq!(e["actor"]["id"], site_key.id.as_str(), "{e}");
    let detail = e["detail"].as_str().unwrap();
    assert_eq!(detail, "addresses=2 countries=0 devices=2 sessions=2");

    // a second erasure succeeds and finds nothing left
    let again: Value = erase(&app, &id, &app.tickets_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["erased"],
        json!({"addresses": 0, "countries": 0, "devices": 0, "sessions": 0})
    );

    // a revoked ticket is erased like any other, and stays revoked
    let (revoked, token) = app.ticket("erase").await;
    admit_from(&app, &token, "device-0003", "192.0.2.3").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{revoked}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = erase(&app, &revoked, &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "revoked");
    assert_eq!(answer["erased"]["addresses"], 1);
    assert_eq!(answer["live_sessions"], 0);
    let status = app.ticket_status(&revoked).await;
    assert_eq!(status["status"], "revoked");
    assert_eq!(status["usage"]["addresses"], json!([]));

    // unknown tickets, and callers without a key or with a wrong one
    assert_problem(
        erase(&app, "t_000000000000000000000000", &app.tickets_key).await,
        StatusCode::NOT_FOUND,
        "ticket_unknown",
    )
    .await;
    assert_problem(
        erase(&app, "not-a-ticket", &app.tickets_key).await,
        StatusCode::NOT_FOUND,
        "ticket_unknown",
    )
    .await;
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/tickets/{id}/personal-data")))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(
        erase(&app, &id, "uk_wrong.key").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_personal_data_and_is_audited_embedded() {
    erasure_removes_personal_data_and_is_audited(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_personal_data_and_is_audited_redis() {
    erasure_removes_personal_data_and_is_audited(Backend::Redis).await;
}

/// A console observer may read the ticket but not erase it (403 `forbidden` for its role), and the ticket
/// page offers the erasure only to a role that may make it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observers_cannot_erase_and_support_can() {
    use crate::admin_console::{add_user, login};
    use usher_core::admin::Role;
    let app = crate::support::spawn_app().await;
    app.open_show("erase", 1, "newest_wins").await;
    let (id, _) = app.ticket("erase").await;
    add_user(&app, "olive", Role::Observer).await;
    add_user(&app, "sam", Role::Support).await;
    let page = |s: &crate::admin_console::Session| {
        app.client
            .get(app.url(&format!("/admin/tickets/{id}")))
            .header("cookie", &s.cookie)
            .send()
    };
    let observer = login(&app, "olive").await;
    let html = page(&observer).await.unwrap().text().await.unwrap();
    assert!(
        !html.contains("erase-personal-data"),
        "observer sees the button"
    );
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/tickets/{id}/personal-data")))
        .header("cookie", &observer.cookie)
        .header("x-csrf-token", &observer.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let support = login(&app, "sam").await;
    let html = page(&support).await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Erase personal data"),
        "support lacks the button"
    );
    let res = app
        .client
        .post(app.url(&format!("/admin/tickets/{id}/erase-personal-data")))
        .header("cookie", &support.cookie)
        .form(&[("_csrf", support.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let audit = app
        .state
        .store
        .audit(&usher_core::admin::AuditFilter {
            action: Some("ticket.erase_personal_data".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor.id(), "sam");
    app.shutdown().await;
}
