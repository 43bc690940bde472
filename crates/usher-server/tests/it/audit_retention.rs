//! The audit log's retention on the real `usher serve`: a log that grew past `audit.max_rows`, with entries
//! older than `audit.retention_days`, is cut back when the node starts (and every minute after), so a flood
//! of failed logins cannot fill the disk.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use serde_json::Value;
use usher_core::admin::{Actor, AuditEntry};
use usher_core::clock::{Clock as _, SystemClock, UnixMs};
use usher_core::store::Store as _;
use usher_store::EmbeddedStore;
use usher_testkit::{ServeProcess, wait_until};

use crate::support::process::{BIN, api_key, serve_config};

const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grown_audit_log_is_cut_back_to_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // a log as a year of failed logins leaves it: 300 entries of 500 days ago, 1,200 of today
    {
        let store = EmbeddedStore::open(&data, Arc::new(SystemClock)).unwrap();
        let now = SystemClock.now().0;
        for i in 0..1_500i64 {
            let at = if i < 300 {
                UnixMs(now - 500 * DAY_MS + i)
            } else {
                UnixMs(now - 1_500 + i)
            };
            store
                .append_audit(AuditEntry {
                    at,
                    actor: Actor::System("login".into()),
                    action: "login.failed".into(),
                    target: format!("n:{i}"),
                    address: Some("192.0.2.1".into()),
                    detail: String::new(),
                })
                .await
                .unwrap();
        }
    }
    let config = serve_config(dir.path(), "[audit]\nretention_days = 400\nmax_rows = 1000");
    let key = api_key(&config, "admin");
    let node = ServeProcess::start(Path::new(BIN), &config).await.unwrap();
    let http = Client::new();
    let entries = wait_until(
        Duration::from_secs(20),
        "the audit log cut back to 1,000 entries",
        || {
            let req = http
                .get(format!("{}/api/v1/audit?limit=10000", node.base_url))
                .bearer_auth(&key);
            async move {
                let v: Value = req.send().await.ok()?.json().await.ok()?;
                let entries = v["entries"].as_array()?.clone();
                (entries.len() <= 1_000).then_some(entries)
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(entries.len(), 1_000, "the newest 1,000 stay");
    let oldest = entries.last().unwrap();
    let cut = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    let at = time::OffsetDateTime::parse(
        oldest["at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(at > cut, "an entry older than 400 days stayed: {oldest}");
    // the newest entries are the ones kept (the last appended, and whatever the start added)
    assert!(
        entries.iter().any(|e| e["target"] == "n:1499"),
        "the newest entry went"
    );
    assert!(!entries.iter().any(|e| e["target"] == "n:0"));
}
