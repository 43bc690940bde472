//! Safe retries of the ticket site's and admins' POSTs (issue 20): `Idempotency-Key` on the real server,
//! on both stores. Concurrent identical POSTs with one key create one ticket and all get the same
//! answer; the same key with another request is refused; another caller's key is another key; a kept
//! refusal is replayed; a twin of a request that never answers gets `idempotency_in_progress`; the store
//! keeps no answer in clear; and every POST the document marks with the header answers its codes.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use usher_core::clock::UnixMs;
use usher_core::store::IdempotencyClaim;

use crate::support::{Backend, TestApp, assert_problem, spawn_app, spawn_app_on};

async fn post(
    app: &TestApp,
    path: &str,
    bearer: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(bearer)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The caller an API key's records are kept under (`key:<id>`).
fn key_scope(bearer: &str) -> String {
    let key = usher_core::secret::ApiKeySecret::parse(bearer).expect("an API key");
    format!("key:{}", key.id)
}

async fn concurrent_identical_posts_create_one_ticket(backend: Backend) {
    let app = Arc::new(spawn_app_on(backend).await);
    app.open_show("demo", 1, "newest_wins").await;
    let body = json!({"show_id": "demo", "external_ref": "order-77"});
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let (app, body) = (Arc::clone(&app), body.clone());
            tokio::spawn(async move {
                let res = post(
                    &app,
                    "/api/v1/tickets",
                    &app.tickets_key,
                    "order-77-create",
                    &body,
                )
                .await;
                let replayed = res.headers().get("idempotent-replayed").is_some();
                (res.status(), replayed, res.text().await.unwrap())
            })
        })
        .collect();
    let mut answers = BTreeSet::new();
    let mut first_runs = 0;
    for t in tasks {
        let (status, replayed, text) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        first_runs += usize::from(!replayed);
        answers.insert(text);
    }
    assert_eq!(first_runs, 1, "one request ran, the others were replayed");
    assert_eq!(
        answers.len(),
        1,
        "every twin got the same answer: {answers:#?}"
    );
    let answer: Value = serde_json::from_str(answers.first().unwrap()).unwrap();
    let token = answer["token"].as_str().unwrap();

    // one ticket under that order, and the store keeps the answer sealed, never its token in clear
    let found: Value = app
        .get_with("/api/v1/tickets?q=order-77", &app.tickets_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["tickets"].as_array().unwrap().len(), 1, "{found}");
    let store_key = app
        .state
        .hasher
        .idempotency_key(&key_scope(&app.tickets_key), "order-77-create")
        .to_hex();
    let until = UnixMs(app.state.store.now().0 + 1_000);
    match app
        .state
        .store
        .claim_idempotency(&store_key, "a probe", until)
        .await
        .unwrap()
    {
        IdempotencyClaim::Held(r) => {
            let sealed = r.answer.expect("an answer is kept");
            assert!(
                !sealed.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is not in the record in clear"
            );
        }
        IdempotencyClaim::Claimed => panic!("the record is kept"),
    }

    // the same key with another body is another request: refused, nothing created
    let other = json!({"show_id": "demo", "external_ref": "order-78"});
    let res = post(
        &app,
        "/api/v1/tickets",
        &app.tickets_key,
        "order-77-create",
        &other,
    )
    .await;
    assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    // another caller's key of the same name is its own
    let res = post(
        &app,
        "/api/v1/tickets",
        &app.admin_key,
        "order-77-create",
        &other,
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("idempotent-replayed").is_none());

    // a batch too: its retry gets the first answer, tokens and all
    let batch =
        json!({"tickets": [{"show_id": "demo", "external_ref": "order-79"}, {"show_id": "demo"}]});
    let first = post(
        &app,
        "/api/v1/tickets/batch",
        &app.tickets_key,
        "batch-1",
        &batch,
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = first.text().await.unwrap();
    let again = post(
        &app,
        "/api/v1/tickets/batch",
        &app.tickets_key,
        "batch-1",
        &batch,
    )
    .await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first);

    // a kept refusal is replayed, as the first answer was: the retry needs a new key
    let ghost = json!({"show_id": "later-show"});
    let res = post(&app, "/api/v1/tickets", &app.tickets_key, "early", &ghost).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "show_unknown").await;
    app.open_show("later-show", 1, "newest_wins").await;
    let res = post(&app, "/api/v1/tickets", &app.tickets_key, "early", &ghost).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "show_unknown").await;
    let res = post(&app, "/api/v1/tickets", &app.tickets_key, "early-2", &ghost).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    Arc::into_inner(app).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_posts_create_one_ticket_embedded() {
    concurrent_identical_posts_create_one_ticket(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_posts_create_one_ticket_redis() {
    concurrent_identical_posts_create_one_ticket(Backend::Redis).await;
}

/// A request that claimed its key and never answered (its node was lost): a twin waits, then is told
/// to retry later; the claim lapses by itself.
#[tokio::test]
async fn a_twin_of_a_request_that_never_answers_is_told_to_retry() {
    let app = spawn_app().await;
    app.open_show("demo", 1, "newest_wins").await;
    let body = json!({"show_id": "demo"});
    let store_key = app
        .state
        .hasher
        .idempotency_key(&key_scope(&app.tickets_key), "stuck")
        .to_hex();
    let fingerprint = usher_server::service::idempotency::fingerprint(
        "POST",
        "/api/v1/tickets",
        "application/json",
        &serde_json::to_vec(&body).unwrap(),
    );
    let until = UnixMs(app.state.store.now().0 + 60_000);
    assert_eq!(
        app.state
            .store
            .claim_idempotency(&store_key, &fingerprint, until)
            .await
            .unwrap(),
        IdempotencyClaim::Claimed
    );
    let started = std::time::Instant::now();
    let res = post(&app, "/api/v1/tickets", &app.tickets_key, "stuck", &body).await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_problem(res, StatusCode::CONFLICT, "idempotency_in_progress").await;
    assert!(started.elapsed() >= usher_server::service::idempotency::WAIT);
    app.shutdown().await;
}

/// Every POST the document gives the header: a malformed key is refused before anything runs, and a
/// key first used elsewhere is another request's.
#[tokio::test]
async fn every_keyed_post_checks_its_idempotency_key() {
    let app = spawn_app().await;
    app.open_show("demo", 1, "newest_wins").await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut posts = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("post") else { continue };
        let has_header = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
        let keyed = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(
            has_header, keyed,
            "{path}: the header is offered exactly on keyed POSTs"
        );
        if has_header {
            // a path parameter gets a well-formed id of nothing
            let target = path
                .replace("{ticket_id}", "t_000000000000000000000000")
                .replace("{show_id}", "no-such-show")
                .replace("{name}", "nobody")
                .replace("{cdn_id}", "no-such-cdn")
                .replace("{webhook_id}", "wh_0000000000000000")
                .replace("{delivery_id}", "dl_000000000000000000000000");
            assert!(!target.contains('{'), "{target}: fill its parameter");
            posts.push(target);
        }
    }
    assert!(posts.len() >= 8, "the keyed POSTs: {posts:?}");
    // the key's first use: a ticket for a show that does not exist (a kept refusal)
    let res = post(
        &app,
        "/api/v1/tickets",
        &app.admin_key,
        "first-use",
        &json!({"show_id": "nope"}),
    )
    .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "show_unknown").await;
    for target in &posts {
        for bad in ["", "with space", &"k".repeat(256), "caf\u{e9}"] {
            let res = app
                .client
                .request(Method::POST, app.url(target))
                .bearer_auth(&app.admin_key)
                .header("idempotency-key", bad)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let body = assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
            assert!(
                body["detail"].as_str().unwrap().contains("Idempotency-Key"),
                "{target}: {body}"
            );
        }
        if target != "/api/v1/tickets" {
            let res = post(
                &app,
                target,
                &app.admin_key,
                "first-use",
                &json!({"show_id": "nope"}),
            )
            .await;
            assert_problem(
                res,
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
            )
            .await;
        }
    }
    app.shutdown().await;
}
