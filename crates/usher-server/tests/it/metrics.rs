//! `/metrics` on the real server: behind `metrics.token` when it is set, on `metrics.listen` alone when
//! that is set, and with `usher_active_sessions` kept as sessions come and go (read from counts the store
//! keeps, never by listing sessions per scrape) for published shows only (an unpublished show's id is not
//! public yet).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use usher_testkit::wait_until;

use crate::support::{TestApp, assert_problem, spawn_app_with};

const TOKEN: &str = "scrape-token-0123456789abcdef";

async fn scrape(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// Waits until the scrape shows `line` (or, with `present` false, no longer shows it).
async fn wait_for(app: &TestApp, line: &str, present: bool) -> String {
    wait_until(Duration::from_secs(10), line, || async {
        let text = scrape(app).await;
        (text.contains(line) == present).then_some(text)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_their_token_and_name_only_published_shows() {
    let app = spawn_app_with(|c| c.metrics.token = Some(TOKEN.into())).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-token-0123456789abcdeX")
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;

    app.open_show("on-sale", 2, "newest_wins").await;
    app.open_show("coming-soon", 2, "newest_wins").await;
    let res = app
        .client
        .put(app.url("/api/v1/shows/coming-soon/published"))
        .bearer_auth(&app.admin_key)
        .json(&json!({"published": false}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let (_, token) = app.ticket("on-sale").await;
    let admitted: serde_json::Value = app
        .admit(&token, "device-metrics-1")
        .await
        .json()
        .await
        .unwrap();
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    app.admit(&token, "device-metrics-2").await;

    // the gauge follows the sessions within a second or so, and names only the published show
    let text = wait_for(&app, "usher_active_sessions{show=\"on-sale\"} 2", true).await;
    assert!(!text.contains("coming-soon"), "{text}");
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/playback/{session}")))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    wait_for(&app, "usher_active_sessions{show=\"on-sale\"} 1", true).await;

    // unpublished, the show leaves the metrics; published again, it is back
    let publish = |published: bool| {
        app.client
            .put(app.url("/api/v1/shows/on-sale/published"))
            .bearer_auth(&app.admin_key)
            .json(&json!({ "published": published }))
            .send()
    };
    assert!(publish(false).await.unwrap().status().is_success());
    wait_for(&app, "on-sale", false).await;
    assert!(publish(true).await.unwrap().status().is_success());
    wait_for(&app, "usher_active_sessions{show=\"on-sale\"} 1", true).await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_an_address_of_their_own() {
    let app = spawn_app_with(|c| c.metrics.listen = Some("127.0.0.1:0".into())).await;
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let at = app.metrics_addr.expect("the metrics address is bound");
    let res = app
        .client
        .get(format!("http://{at}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("# TYPE usher_active_sessions gauge")
    );
    // that address serves metrics and nothing else
    let res = app
        .client
        .get(format!("http://{at}/api/v1/shows"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.shutdown().await;
}
