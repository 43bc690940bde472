//! The HTTP API over real HTTP against an in-process server on port 0: tickets, shows, keys, the viewer
//! flow and the lease protocol (including a 200-device race), and operations endpoints.

use std::sync::Arc;

use crate::support::{Backend, assert_problem, spawn_app, spawn_app_on, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_idempotent_on_the_token() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let body =
        json!({"show_id": "gig", "token": "site-chosen-token-0001", "external_ref": "order-1"});
    let first = app.register(body.clone()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["token"], "site-chosen-token-0001");
    assert!(
        first["watch_url"]
            .as_str()
            .unwrap()
            .ends_with("/watch/site-chosen-token-0001")
    );
    let again = app.register(body).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let other = app
        .register(
            json!({"show_id": "gig", "token": "site-chosen-token-0001", "external_ref": "order-2"}),
        )
        .await;
    let p = assert_problem(other, StatusCode::CONFLICT, "token_conflict").await;
    assert_eq!(p["ticket_id"], first["id"]);
    // generated tokens carry at least 128 random bits (43 base64url characters = 256 bits)
    let generated: Value = app
        .register(json!({"show_id": "gig"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(generated["token"].as_str().unwrap().len(), 43);
    assert_ne!(generated["id"], first["id"]);
    // each ticket created is audited once, by the key that registered it; a repeat and a conflict are not
    let audited = app
        .state
        .store
        .audit(&usher_core::admin::AuditFilter {
            action: Some("ticket.register".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let targets: Vec<&str> = audited.iter().map(|e| e.target.as_str()).collect();
    let target = |v: &Value| format!("ticket:{}", v["id"].as_str().unwrap());
    assert_eq!(targets, [target(&generated), target(&first)]);
    assert!(
        audited
            .iter()
            .all(|e| matches!(e.actor, usher_core::admin::Actor::ApiKey(_))),
        "{audited:?}"
    );
    let unknown_show = app.register(json!({"show_id": "nope"})).await;
    assert_problem(
        unknown_show,
        StatusCode::UNPROCESSABLE_ENTITY,
        "show_unknown",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_registration_answers_per_item() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let mut tickets: Vec<Value> = (0..2000)
        .map(|i| json!({"show_id": "gig", "token": format!("batch-token-{i:010}")}))
        .collect();
    tickets.push(json!({"show_id": "gig", "token": "batch-token-0000000001"}));
    tickets.push(json!({"show_id": "ghost"}));
    tickets.push(json!({"show_id": "gig", "token": "bad token"}));
    let res = app
        .client
        .post(app.url("/api/v1/tickets/batch"))
        .bearer_auth(&app.tickets_key)
        .json(&json!({"tickets": tickets}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (
            v["created"].as_u64(),
            v["existing"].as_u64(),
            v["failed"].as_u64()
        ),
        (Some(2000), Some(1), Some(2))
    );
    let results = v["results"].as_array().unwrap();
    assert_eq!(results[2000]["status"], 200);
    assert_eq!(results[2001]["status"], 422);
    assert_eq!(results[2001]["error"]["code"], "show_unknown");
    assert_eq!(results[2002]["status"], 400);
    let id = results[1234]["ticket"]["id"].as_str().unwrap();
    assert_eq!(app.ticket_status(id).await["status"], "active");
    app.shutdown().await;
}

/// `GET /api/v1/tickets?q=`: the ticket of an id, else every ticket of an external reference; never a
/// token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_are_found_by_id_or_external_reference() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let mut ids = Vec::new();
    for external_ref in ["order-7", "order-7", "order-8"] {
        let res = app
            .register(json!({"show_id": "gig", "external_ref": external_ref}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let found = |q: String| {
        let app = &app;
        async move {
            let res = app
                .get_with(&format!("/api/v1/tickets?q={q}"), &app.tickets_key)
                .await;
            assert_eq!(res.status(), StatusCode::OK, "q={q}");
            let v: Value = res.json().await.unwrap();
            let tickets = v["tickets"].as_array().expect("tickets").clone();
            for t in &tickets {
                assert!(t.get("token").is_none(), "no token in a search answer: {t}");
            }
            let mut ids: Vec<String> = tickets
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![ids[0].clone(), ids[1].clone()];
    both.sort();
    assert_eq!(found("order-7".into()).await, both);
    assert_eq!(found("order-8".into()).await, vec![ids[2].clone()]);
    assert_eq!(found(ids[1].clone()).await, vec![ids[1].clone()]);
    assert!(found("order-9".into()).await.is_empty());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_are_written_read_listed_and_deleted() {
    let app = spawn_app().await;
    let created = app.open_show("gig", 2, "oldest_wins").await;
    assert_eq!(created["max_devices"], 2);
    assert_eq!(created["heartbeat_interval_s"], 15);
    assert_eq!(created["lease_ttl_s"], 45);
    let res = app.get_with("/api/v1/shows/gig", &app.admin_key).await;
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = app
        .get_with("/api/v1/shows", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["shows"].as_array().unwrap().len(), 1);
    // the tickets key cannot manage shows
    let res = app.get_with("/api/v1/shows", &app.tickets_key).await;
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    app.ticket("gig").await;
    let res = app.delete_with("/api/v1/shows/gig", &app.admin_key).await;
    assert_problem(res, StatusCode::CONFLICT, "show_has_tickets").await;
    app.open_show("empty", 1, "newest_wins").await;
    let res = app.delete_with("/api/v1/shows/empty", &app.admin_key).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get_with("/api/v1/shows/empty", &app.admin_key).await;
    assert_problem(res, StatusCode::NOT_FOUND, "show_unknown").await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_lives_at_most_two_heartbeats_by_default() {
    let app = spawn_app().await;
    // the default heartbeat (15 s), and one given (10 s), without a grant lifetime
    let created = app.open_show("gig", 1, "newest_wins").await;
    assert_eq!(created["heartbeat_interval_s"], 15);
    assert_eq!(created["grant_ttl_s"], 30);
    let mut spec = created.clone();
    for key in [
        "id",
        "poster",
        "created_at",
        "updated_at",
        "grant_ttl_s",
        "lease_ttl_s",
    ] {
        spec.as_object_mut().unwrap().remove(key);
    }
    spec["heartbeat_interval_s"] = json!(10);
    let res = app.put_show("fast", spec).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let fast: Value = res.json().await.unwrap();
    assert_eq!(fast["grant_ttl_s"], 20);
    // what a viewer gets expires within two heartbeats
    for (show, heartbeat_s) in [("gig", 15), ("fast", 10)] {
        let (_, token) = app.ticket(show).await;
        let before = time::OffsetDateTime::now_utc();
        let res = app.admit(&token, &format!("device-ttl-{show}")).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let body: Value = res.json().await.unwrap();
        for grant in body["grants"].as_array().unwrap() {
            let expires = time::OffsetDateTime::parse(
                grant["expires_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let lifetime = expires - before;
            assert!(
                lifetime <= time::Duration::seconds(2 * heartbeat_s + 1)
                    && lifetime > time::Duration::seconds(heartbeat_s),
                "{show}: {grant} lives {lifetime}"
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_and_can_be_revoked() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"name": "box office", "scopes": ["tickets"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let key: Value = res.json().await.unwrap();
    let secret = key["key"].as_str().unwrap().to_owned();
    let list: Value = app
        .get_with("/api/v1/api-keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let listed = list["api_keys"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|k| k.get("key").is_none() && k.get("secret_hash").is_none()),
        "{list}"
    );
    app.open_show("gig", 1, "newest_wins").await;
    let res = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&secret)
        .json(&json!({"show_id": "gig"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = app
        .delete_with(
            &format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()),
            &app.admin_key,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .client
        .post(app.url("/api/v1/tickets"))
        .bearer_auth(&secret)
        .json(&json!({"show_id": "gig"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    app.shutdown().await;
}

/// Found by schemathesis: its stateful run listed the keys and deleted the one it was using, which locks
/// the API when that is the last admin key. A key cannot delete itself; another admin key can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_cannot_delete_itself() {
    let app = spawn_app().await;
    let list: Value = app
        .get_with("/api/v1/api-keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let own = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/api-keys/{own}");
    let res = app.delete_with(&path, &app.admin_key).await;
    assert_problem(res, StatusCode::CONFLICT, "api_key_in_use").await;
    assert_eq!(
        app.get_with("/api/v1/api-keys", &app.admin_key)
            .await
            .status(),
        StatusCode::OK
    );
    let res = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"name": "second admin", "scopes": ["admin"]}))
        .send()
        .await
        .unwrap();
    let other: Value = res.json().await.unwrap();
    let res = app.delete_with(&path, other["key"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.shutdown().await;
}

async fn session_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    v["session_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_wins_moves_playback_and_tells_the_old_device() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let (id, token) = app.ticket("gig").await;
    let first: Value = app.admit(&token, "device-aaaa").await.json().await.unwrap();
    let a = first["session_id"].as_str().unwrap().to_owned();
    // a reload of the same device, with its session's secret, re-attaches to its session
    let secret = first["session_secret"].as_str().unwrap();
    let res = app.readmit(&token, "device-aaaa", secret).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["session_id"], a.as_str());
    assert_eq!(v["reattached"], true);
    assert_ne!(
        v["session_secret"], first["session_secret"],
        "the secret moved"
    );
    let b = session_of(app.admit(&token, "device-bbbb").await).await;
    assert_ne!(a, b);
    let p = assert_problem(app.heartbeat(&a).await, StatusCode::CONFLICT, "superseded").await;
    assert_eq!(p["superseded_by"], "label of device-bbbb");
    assert!(p["superseded_at"].is_string());
    let hb = app.heartbeat(&b).await;
    assert_eq!(hb.status(), StatusCode::OK);
    let hb: Value = hb.json().await.unwrap();
    assert_eq!(hb["status"], "ok");
    assert_eq!(hb["grants"][0]["cdn"], "origin");
    let usage = &app.ticket_status(&id).await["usage"];
    assert_eq!(
        (
            usage["sessions"].as_u64(),
            usage["devices"].as_u64(),
            usage["active_sessions"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    assert!(usage["first_play_at"].is_string() && usage["last_seen_at"].is_string());
    // both admits came from the loopback test client: one address, seen twice
    assert_eq!(
        usage["addresses"].as_array().map(Vec::len),
        Some(1),
        "{usage}"
    );
    assert_eq!(usage["addresses"][0]["address"], "127.0.0.1");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_wins_refuses_until_the_first_device_leaves() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "oldest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let a = session_of(app.admit(&token, "device-aaaa").await).await;
    let res = app.admit(&token, "device-bbbb").await;
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(retry.is_some_and(|s| (1..=45).contains(&s)), "{retry:?}");
    let p = assert_problem(res, StatusCode::CONFLICT, "ticket_in_use").await;
    assert!(p["retry_after_s"].as_u64().is_some());
    let res = app.leave(&a).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.heartbeat(&a).await, StatusCode::GONE, "session_ended").await;
    session_of(app.admit(&token, "device-bbbb").await).await;
    app.shutdown().await;
}

/// The dashboard's live viewers, in all and per show, follow admits, leaves and an admin's end on both
/// stores (the counts the store keeps as leases change, read in one step).
async fn dashboard_counts_live_viewers(backend: Backend) {
    let app = spawn_app_on(backend).await;
    app.open_show("gig", 2, "newest_wins").await;
    app.open_show("quiet", 1, "newest_wins").await;
    app.open_show("solo", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let (_, solo) = app.ticket("solo").await;
    let live = async || -> (u64, Vec<(String, u64)>) {
        let res = app.get_with("/api/v1/dashboard", &app.admin_key).await;
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        let mut shows: Vec<(String, u64)> = v["shows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["show_id"].as_str().unwrap().to_owned(),
                    s["viewers"].as_u64().unwrap(),
                )
            })
            .collect();
        shows.sort();
        (v["live_viewers"].as_u64().unwrap(), shows)
    };
    let per_show = |gig: u64, solo: u64| {
        vec![
            ("gig".to_owned(), gig),
            ("quiet".to_owned(), 0),
            ("solo".to_owned(), solo),
        ]
    };
    assert_eq!(live().await, (0, per_show(0, 0)));
    let a = session_of(app.admit(&token, "device-aaaa").await).await;
    let b = session_of(app.admit(&token, "device-bbbb").await).await;
    session_of(app.admit(&solo, "device-cccc").await).await;
    assert_eq!(live().await, (3, per_show(2, 1)));
    let res = app.leave(&a).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(live().await, (2, per_show(1, 1)));
    let res = app
        .delete_with(&format!("/api/v1/sessions/{b}"), &app.admin_key)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(live().await, (1, per_show(0, 1)));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_live_viewers_embedded() {
    dashboard_counts_live_viewers(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_live_viewers_redis() {
    dashboard_counts_live_viewers(Backend::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_admin_end_stop_sessions() {
    let app = spawn_app().await;
    app.open_show("gig", 2, "newest_wins").await;
    let (id, token) = app.ticket("gig").await;
    let a = session_of(app.admit(&token, "device-aaaa").await).await;
    let b = session_of(app.admit(&token, "device-bbbb").await).await;
    let res = app
        .delete_with(&format!("/api/v1/sessions/{b}"), &app.admin_key)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(app.heartbeat(&b).await, StatusCode::GONE, "session_ended").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{id}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "revoked");
    assert!(v.get("token").is_none(), "the token is never shown again");
    assert_problem(
        app.heartbeat(&a).await,
        StatusCode::FORBIDDEN,
        "ticket_revoked",
    )
    .await;
    assert_problem(
        app.admit(&token, "device-cccc").await,
        StatusCode::FORBIDDEN,
        "ticket_revoked",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_is_enforced() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    for (id, from, until) in [
        (
            "later",
            now + time::Duration::hours(1),
            now + time::Duration::hours(2),
        ),
        (
            "past",
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        ),
    ] {
        let res = app.put_show(id, json!({"title": id, "starts_at": fmt(from), "ends_at": fmt(until), "stream_path": "demo"})).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let (_, later) = app.ticket("later").await;
    let res = app.admit(&later, "device-aaaa").await;
    assert!(res.headers().get("retry-after").is_some());
    let p = assert_problem(res, StatusCode::FORBIDDEN, "not_started").await;
    assert!(p["starts_at"].is_string());
    let (_, past) = app.ticket("past").await;
    assert_problem(
        app.admit(&past, "device-aaaa").await,
        StatusCode::GONE,
        "ended",
    )
    .await;
    // a ticket's own window narrows the show's
    app.open_show("gig", 1, "newest_wins").await;
    let res = app
        .register(json!({"show_id": "gig", "valid_until": fmt(now - time::Duration::minutes(1))}))
        .await;
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(
        app.admit(&token, "device-aaaa").await,
        StatusCode::GONE,
        "ended",
    )
    .await;
    app.shutdown().await;
}

async fn race(policy: &str) {
    // 200 devices on one ticket at once: more than its admits' burst (`rate_limits.admits_per_ticket`),
    // which is not what this test is about
    let app = Arc::new(
        spawn_app_with(|c| c.rate_limits.admits_per_ticket = usher_server::settings::Limit::OFF)
            .await,
    );
    app.open_show("race", 1, policy).await;
    let (_, token) = app.ticket("race").await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let app = Arc::clone(&app);
            let token = token.clone();
            tokio::spawn(async move {
                let res = app.admit(&token, &format!("device-{i:06}")).await;
                let status = res.status();
                let v: Value = res.json().await.unwrap();
                (status, v)
            })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut in_use = 0;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            StatusCode::CREATED => sessions.push(v["session_id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => {
                assert_eq!(v["code"], "ticket_in_use");
                in_use += 1;
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    let live: Value = app
        .get_with("/api/v1/sessions?show_id=race", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        live["sessions"].as_array().unwrap().len(),
        1,
        "exactly one lease at the end"
    );
    if policy == "oldest_wins" {
        assert_eq!((sessions.len(), in_use), (1, 199));
    } else {
        assert_eq!(sessions.len(), 200);
        let mut renewed = 0;
        for s in &sessions {
            let res = app.heartbeat(s).await;
            match res.status() {
                StatusCode::OK => renewed += 1,
                StatusCode::CONFLICT => {
                    assert_eq!(res.json::<Value>().await.unwrap()["code"], "superseded")
                }
                other => panic!("unexpected heartbeat {other}"),
            }
        }
        assert_eq!(
            renewed, 1,
            "exactly one session still plays; every other heard `superseded`"
        );
    }
    Arc::into_inner(app)
        .expect("no other holders")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_admits_under_oldest_wins_admit_exactly_one() {
    race("oldest_wins").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_admits_under_newest_wins_leave_exactly_one_lease() {
    race("newest_wins").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    session_of(app.admit(&token, "device-aaaa").await).await;
    // the sessions gauge is read from the store every second
    let text = usher_testkit::wait_until(
        std::time::Duration::from_secs(10),
        "the sessions gauge",
        || async {
            let res = app.client.get(app.url("/metrics")).send().await.ok()?;
            let text = res.text().await.ok()?;
            text.contains("usher_active_sessions{show=\"gig\"} 1")
                .then_some(text)
        },
    )
    .await
    .unwrap();
    for needle in [
        "usher_http_requests_total",
        "usher_http_request_duration_seconds_bucket",
        "usher_admits_total",
        "usher_active_sessions{show=\"gig\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}");
    }
    assert!(!text.contains(&token), "no token in metrics");
    let res = app.client.get(app.url("/nowhere")).send().await.unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    app.shutdown().await;
}

/// A show taken off refuses admits with its own code (the API document lists it, and the answer-checking
/// proxy holds the answer to that), and admits again once put back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpublished_show_refuses_admits_until_it_is_published_again() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let publish = |published: bool| {
        app.client
            .put(app.url("/api/v1/shows/gig/published"))
            .bearer_auth(&app.admin_key)
            .json(&json!({ "published": published }))
            .send()
    };
    assert!(publish(false).await.unwrap().status().is_success());
    assert_problem(
        app.admit(&token, "device-unpub-01").await,
        StatusCode::FORBIDDEN,
        "show_unpublished",
    )
    .await;
    assert!(publish(true).await.unwrap().status().is_success());
    assert_eq!(
        app.admit(&token, "device-unpub-01").await.status(),
        StatusCode::CREATED
    );
    app.shutdown().await;
}
