//! Backups on the real binary: `usher backup --server` takes a snapshot while the server works, a running
//! store cannot be restored over or read offline, and `usher restore` brings back exactly what the
//! snapshot held (tickets registered after it are not there; tokens and usage are).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::UsherProcess;

fn usher_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_usher"))
}

async fn usher(args: &[&str], api_key: &str) -> std::process::Output {
    tokio::process::Command::new(usher_bin())
        .args(args)
        .env("USHER_API_KEY", api_key)
        .env(
            "USHER_SECRETS__TOKEN_KEY",
            "backup-test-token-key-0123456789abcdef",
        )
        .env(
            "USHER_SECRETS__GRANT_KEY",
            "backup-test-grant-key-0123456789abcdef",
        )
        .output()
        .await
        .unwrap()
}

async fn register(
    http: &Client,
    base: &str,
    key: &str,
    show: &str,
    n: usize,
    tag: &str,
) -> Vec<Value> {
    let tickets: Vec<Value> = (0..n)
        .map(|i| json!({"show_id": show, "external_ref": format!("{tag}-{i}")}))
        .collect();
    let res = http
        .post(format!("{base}/api/v1/tickets/batch"))
        .bearer_auth(key)
        .json(&json!({"tickets": tickets}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ticket"].clone())
        .collect()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn stop(mut p: UsherProcess) {
    p.signal("TERM").unwrap();
    p.wait_exit(Duration::from_secs(20)).await.unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let (live, restored) = (dir.path().join("live"), dir.path().join("restored"));
    let backup = dir.path().join("usher.backup");
    let http = Client::new();

    let demo = UsherProcess::start_demo(&usher_bin(), &live).await.unwrap();
    let info = demo.info.clone();
    let before = register(
        &http,
        &info.base_url,
        &info.tickets_key,
        &info.show_id,
        50,
        "before",
    )
    .await;
    let res = http
        .post(format!("{}/api/v1/playback", info.base_url))
        .header("x-usher-device", "device-backup-01")
        .json(&json!({"token": info.ticket_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = http
        .post(format!("{}/api/v1/playback", info.base_url))
        .header("x-usher-device", "device-backup-03")
        .json(&json!({"token": before[1]["token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );

    // what the backup must bring back of a ticket in use: its record, its usage and the seat it holds
    let ticket_status = |base: String, key: String, id: String| {
        let http = http.clone();
        async move {
            let res = http
                .get(format!("{base}/api/v1/tickets/{id}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.json::<Value>().await.unwrap()
        }
    };
    let in_use = before[1]["id"].as_str().unwrap().to_owned();
    let held = ticket_status(
        info.base_url.clone(),
        info.tickets_key.clone(),
        in_use.clone(),
    )
    .await;
    assert_eq!(held["usage"]["active_sessions"], 1, "{held}");
    assert_eq!(held["usage"]["devices"], 1, "{held}");

    // only admins take backups
    let res = http
        .post(format!("{}/api/v1/backup", info.base_url))
        .bearer_auth(&info.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let out = usher(
        &["backup", "--server", &info.base_url, "--out", s(&backup)],
        &info.admin_key,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::metadata(&backup).unwrap().len() > 0);
    let out = usher(
        &["backup", "--server", &info.base_url, "--out", s(&backup)],
        &info.admin_key,
    )
    .await;
    assert!(
        !out.status.success(),
        "an existing file is never overwritten"
    );

    // the running store can be neither restored over nor read offline
    let out = usher(
        &[
            "restore",
            "--from",
            s(&backup),
            "--data-dir",
            s(&live),
            "--force",
        ],
        "",
    )
    .await;
    assert!(
        !out.status.success() && text(&out).contains("in use"),
        "{}",
        text(&out)
    );
    let out = usher(
        &[
            "backup",
            "--data-dir",
            s(&live),
            "--out",
            s(&dir.path().join("x")),
        ],
        "",
    )
    .await;
    assert!(
        !out.status.success() && text(&out).contains("--server"),
        "{}",
        text(&out)
    );

    let after = register(
        &http,
        &info.base_url,
        &info.tickets_key,
        &info.show_id,
        10,
        "after",
    )
    .await;
    stop(demo).await;

    let out = usher(
        &["restore", "--from", s(&backup), "--data-dir", s(&restored)],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    // tokens are stored as keyed hashes: the restored store needs the same keys (for `usher serve` the
    // same configuration; the demo keeps them beside its database)
    std::fs::copy(
        live.join("demo-secrets.json"),
        restored.join("demo-secrets.json"),
    )
    .unwrap();
    let demo = UsherProcess::start_demo(&usher_bin(), &restored)
        .await
        .unwrap();
    let info2 = demo.info.clone();
    // the ticket in use is back as it was at the backup: usage, device history and its live seat
    let back = ticket_status(info2.base_url.clone(), info2.tickets_key.clone(), in_use).await;
    assert_eq!(
        back, held,
        "the restored ticket differs from the backed-up one"
    );
    for t in &before {
        let res = http
            .get(format!(
                "{}/api/v1/tickets/{}",
                info2.base_url,
                t["id"].as_str().unwrap()
            ))
            .bearer_auth(&info2.tickets_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "ticket {t} is back");
    }
    for t in &after {
        let res = http
            .get(format!(
                "{}/api/v1/tickets/{}",
                info2.base_url,
                t["id"].as_str().unwrap()
            ))
            .bearer_auth(&info2.tickets_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::NOT_FOUND,
            "ticket {t} came after the backup"
        );
    }
    // a token from before still admits, on the same device as a reattachment of its session
    let res = http
        .post(format!("{}/api/v1/playback", info2.base_url))
        .header("x-usher-device", "device-backup-02")
        .json(&json!({"token": before[0]["token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    stop(demo).await;

    // the stopped store backs up offline too, and a restore over it needs --force
    let offline = dir.path().join("offline.backup");
    let out = usher(
        &["backup", "--data-dir", s(&restored), "--out", s(&offline)],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let out = usher(
        &["restore", "--from", s(&offline), "--data-dir", s(&restored)],
        "",
    )
    .await;
    assert!(
        !out.status.success() && text(&out).contains("--force"),
        "{}",
        text(&out)
    );
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "not a backup").unwrap();
    let out = usher(
        &[
            "restore",
            "--from",
            s(&junk),
            "--data-dir",
            s(&restored),
            "--force",
        ],
        "",
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    let out = usher(
        &[
            "restore",
            "--from",
            s(&offline),
            "--data-dir",
            s(&restored),
            "--force",
        ],
        "",
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
}
