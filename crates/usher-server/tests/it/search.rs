//! Searches do not stall the node: with 100,000 tickets registered, ticket searches (through the store's
//! external-reference index) and audit reads (bounded scans off the async runtime) running alongside do
//! not move the heartbeat p99 of the real `usher serve` by more than 2×. Run with `--nocapture` to see the
//! figures.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::ServeProcess;

use crate::support::process::{BIN, api_key, serve_config};

const TICKETS: usize = 100_000;
/// Tickets per external reference (an order of four seats).
const PER_ORDER: usize = 4;

/// One viewer's session, heartbeating as an app does (the secret of each answer goes with the next).
struct Viewer {
    session: String,
    secret: String,
}

impl Viewer {
    async fn beat(&mut self, http: &Client, base: &str) -> Duration {
        let started = Instant::now();
        let res = http
            .post(format!("{base}/api/v1/playback/{}/heartbeat", self.session))
            .header("x-usher-session-secret", &self.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        let took = started.elapsed();
        self.secret = v["session_secret"].as_str().unwrap().to_owned();
        took
    }
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99).div_ceil(100) - 1]
}

/// `n` heartbeats one after the other, 5 ms apart; their p99.
async fn heartbeats(viewer: &mut Viewer, http: &Client, base: &str, n: usize) -> Duration {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        took.push(viewer.beat(http, base).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p99(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn searches_over_100000_tickets_do_not_stall_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        // the per-caller search bucket ([rate_limits.searches]) is off: this test measures what searches
        // at full speed do to the node, not how soon they are refused
        "[rate_limits.searches]\nper_minute = 0",
    );
    let admin = api_key(&config, "admin");
    let site = api_key(&config, "tickets");
    let node = ServeProcess::start(Path::new(BIN), &config)
        .await
        .expect("usher serve starts");
    let base = node.base_url.clone();
    let http = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let res = http
        .put(format!("{base}/api/v1/shows/big"))
        .bearer_auth(&admin)
        .json(
            &json!({"title": "Big", "starts_at": fmt(now - time::Duration::hours(1)),
                      "ends_at": fmt(now + time::Duration::hours(2)), "stream_path": "demo"}),
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let started = Instant::now();
    let mut first_token = None;
    for batch in 0..TICKETS / 10_000 {
        let items: Vec<Value> = (0..10_000)
            .map(|i| {
                let n = batch * 10_000 + i;
                json!({"show_id": "big", "external_ref": format!("order-{}", n / PER_ORDER)})
            })
            .collect();
        let res = http
            .post(format!("{base}/api/v1/tickets/batch"))
            .bearer_auth(&site)
            .json(&json!({ "tickets": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        if first_token.is_none() {
            let v: Value = res.json().await.unwrap();
            first_token = v["results"][0]["ticket"]["token"]
                .as_str()
                .map(str::to_owned);
        }
    }
    println!("{TICKETS} tickets registered in {:?}", started.elapsed());

    let res = http
        .post(format!("{base}/api/v1/playback"))
        .header("x-usher-device", "device-search-01")
        .json(&json!({"token": first_token.expect("a token")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    let mut viewer = Viewer {
        session: v["session_id"].as_str().unwrap().to_owned(),
        secret: v["session_secret"].as_str().unwrap().to_owned(),
    };

    // a search finds an order's four tickets
    let res = http
        .get(format!("{base}/api/v1/tickets?q=order-24999"))
        .bearer_auth(&site)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let found: Value = res.json().await.unwrap();
    assert_eq!(
        found["tickets"].as_array().unwrap().len(),
        PER_ORDER,
        "{found}"
    );

    // warm up, then alternate rounds without and with four searchers (ticket searches and audit reads)
    heartbeats(&mut viewer, &http, &base, 100).await;
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let searches = Arc::new(AtomicU64::new(0));
    for _round in 0..3 {
        quiet.push(heartbeats(&mut viewer, &http, &base, 300).await);
        let running = Arc::new(AtomicBool::new(true));
        let mut searchers = tokio::task::JoinSet::new();
        for s in 0..4 {
            let (http, base, running, searches) = (
                http.clone(),
                base.clone(),
                running.clone(),
                searches.clone(),
            );
            let (site, admin) = (site.clone(), admin.clone());
            searchers.spawn(async move {
                let mut i = s * 7919;
                while running.load(Ordering::Relaxed) {
                    i = (i + 104_729) % (TICKETS / PER_ORDER);
                    let req = if s == 3 {
                        http.get(format!("{base}/api/v1/audit?target=nothing-{i}"))
                            .bearer_auth(&admin)
                    } else {
                        http.get(format!("{base}/api/v1/tickets?q=order-{i}"))
                            .bearer_auth(&site)
                    };
                    let res = req.send().await.unwrap();
                    assert_eq!(res.status(), StatusCode::OK);
                    searches.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            });
        }
        // 300 heartbeats take about 3 s; a node stalled by searches takes minutes
        busy.push(
            tokio::time::timeout(
                Duration::from_secs(60),
                heartbeats(&mut viewer, &http, &base, 300),
            )
            .await
            .expect(
                "300 heartbeats alongside searches took over a minute: the searches stall the node",
            ),
        );
        running.store(false, Ordering::Relaxed);
        while let Some(r) = searchers.join_next().await {
            r.unwrap();
        }
    }
    let ms = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "heartbeat p99 per round without searches: {} ms; with 4 searchers: {} ms ({} searches)",
        ms(&quiet),
        ms(&busy),
        searches.load(Ordering::Relaxed)
    );
    // the median round of each kind; the bound of 2×, against a floor of 10 ms for a quiet p99: on
    // a 2-core machine running other tests a quiet round's p99 alone ranges 4–13 ms (a CI run at 65d8409
    // failed a 5 ms floor with a median of 4.9 ms quiet, 11.4 ms busy), while searches that stall the
    // node (a full scan per search, as before the index) put it near a second
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (quiet, busy) = (median(quiet), median(busy));
    let bound = quiet.max(Duration::from_millis(10)) * 2;
    assert!(
        busy <= bound,
        "heartbeat p99 {busy:?} with searches, {quiet:?} without (bound {bound:?})"
    );
}
