//! Backups on the real binary: `usher backup --server` takes a snapshot while the server works, a running
//! store cannot be restored over or read offline, and `usher restore` brings back exactly what the
//! snapshot held (tickets registered after it are not there; tokens and usage are).

use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::ObjectStoreExt as _;
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

/// moto's S3-compatible server on a loopback port (from the venv `scripts/test.sh` makes), killed on drop.
struct Moto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn moto() -> Moto {
    let bin = std::env::var("USHER_TEST_MOTO_SERVER")
        .unwrap_or_else(|_| "/var/tmp/usher-moto/bin/moto_server".into());
    assert!(
        Path::new(&bin).exists(),
        "{bin} is missing: scripts/test.sh installs moto[server] into /var/tmp/usher-moto (or set USHER_TEST_MOTO_SERVER)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(&bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = Client::new();
    usher_testkit::wait_until(Duration::from_secs(30), "moto_server", || {
        let (http, endpoint) = (http.clone(), endpoint.clone());
        async move { http.get(&endpoint).send().await.ok().map(|_| ()) }
    })
    .await
    .expect("moto_server answers");
    Moto { child, endpoint }
}

/// The `AWS_*` settings that point the S3 client at `moto`.
fn aws_env(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "usher-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "usher-test-secret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

/// The object names under `prefix` in `bucket`, listed through the S3 API.
async fn objects(moto: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    let xml = Client::new()
        .get(format!(
            "{}/{bucket}?list-type=2&prefix={prefix}",
            moto.endpoint
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut names: Vec<String> = xml
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

async fn metric(http: &Client, base: &str, name: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

async fn run_usher(args: &[&str], env: &[(&'static str, String)]) -> std::process::Output {
    tokio::process::Command::new(usher_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_land_in_s3_with_retention_and_restore_every_acknowledged_ticket() {
    let moto = moto().await;
    let http = Client::new();
    let res = http
        .put(format!("{}/usher-backups", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "bucket: {}", res.status());
    let env = aws_env(&moto);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = '{}'\nmedia_dir = '{}'\n\
             [secrets]\ntoken_key = \"backup-test-token-key-0123456789abcdef\"\n\
             grant_key = \"backup-test-grant-key-0123456789abcdef\"\n\
             [log]\nformat = \"json\"\n\
             [backup]\ndestination = \"s3://usher-backups/site-a\"\ninterval_s = 2\nkeep = 2\nkeep_days = 1\n",
            dir.path().join("live").display(),
            usher_testkit::repo_root().join("media").display()
        ),
    )
    .unwrap();
    let created = run_usher(
        &[
            "api-key",
            "create",
            "--config",
            s(&config),
            "--name",
            "t",
            "--scope",
            "admin",
        ],
        &env,
    )
    .await;
    assert!(created.status.success(), "{}", text(&created));
    let key = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = usher_testkit::ServeProcess::start_with_env(&usher_bin(), &config, &env_refs)
        .await
        .unwrap();
    let base = server.base_url.clone();

    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let res = http
        .put(format!("{base}/api/v1/shows/gig"))
        .bearer_auth(&key)
        .json(
            &json!({"title": "Gig", "starts_at": fmt(now - time::Duration::hours(1)),
            "ends_at": fmt(now + time::Duration::hours(3)), "stream_path": "demo"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let tickets = register(&http, &base, &key, "gig", 40, "acked").await;
    let acked_at = time::OffsetDateTime::now_utc();

    // backups keep coming every 2 s; retention keeps the newest two (and each one's manifest)
    usher_testkit::wait_until(Duration::from_secs(60), "four backups", || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            (metric(&http, &base, "usher_backups_total{outcome=\"ok\"}").await >= 4.0).then_some(())
        }
    })
    .await
    .expect("four backups within a minute");
    assert_eq!(
        metric(&http, &base, "usher_backups_total{outcome=\"failed\"}").await,
        0.0
    );
    let last = metric(&http, &base, "usher_backup_last_success_timestamp_seconds").await;
    assert!(last >= acked_at.unix_timestamp() as f64, "{last}");
    // retention runs after each upload (which the counter has already counted), and the next backup
    // may land meanwhile: between two backups the folder holds the newest two, each with its manifest
    let listed = usher_testkit::wait_until(Duration::from_secs(20), "retention", || {
        let moto = &moto;
        async move {
            let listed = objects(moto, "usher-backups", "site-a/").await;
            let backups = listed.iter().filter(|n| n.ends_with(".redb")).count();
            (backups == 2 && listed.len() == 4).then_some(listed)
        }
    })
    .await
    .expect("retention keeps the newest 2 backups, each with its manifest");
    assert!(
        listed.iter().filter(|n| n.ends_with(".redb.json")).count() == 2,
        "{listed:?}"
    );
    drop(server);

    // the newest backup restores into a new data directory with every acknowledged ticket
    let restored = dir.path().join("restored");
    let out = run_usher(
        &[
            "restore",
            "--from",
            "s3://usher-backups/site-a",
            "--data-dir",
            s(&restored),
        ],
        &env,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("SHA-256 checked"), "{}", text(&out));
    let config_b = dir.path().join("restored.toml");
    std::fs::write(
        &config_b,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(s(&dir.path().join("live")), s(&restored))
            .replace(
                "[backup]\ndestination = \"s3://usher-backups/site-a\"\n",
                "[backup]\n",
            ),
    )
    .unwrap();
    let server = usher_testkit::ServeProcess::start(&usher_bin(), &config_b)
        .await
        .unwrap();
    for t in &tickets {
        let res = http
            .get(format!(
                "{}/api/v1/tickets/{}",
                server.base_url,
                t["id"].as_str().unwrap()
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "ticket {} restored", t["id"]);
    }
    drop(server);

    // a damaged copy (one byte changed) and a truncated one are refused before anything is replaced
    let before = std::fs::read(restored.join("usher.redb")).unwrap();
    // the server took more before it stopped: list again
    let listed = objects(&moto, "usher-backups", "site-a/").await;
    // (the newest complete one: the stop may have cut an upload short)
    let newest = listed
        .iter()
        .rfind(|n| n.ends_with(".redb") && listed.contains(&format!("{n}.json")))
        .unwrap()
        .clone();
    // read and write objects as any S3 client would (signed requests)
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("usher-backups")
        .with_endpoint(&moto.endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("usher-test")
        .with_secret_access_key("usher-test-secret")
        .build()
        .unwrap();
    let get = |name: String| {
        let s3 = s3.clone();
        async move {
            s3.get(&object_store::path::Path::from(name))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        }
    };
    let original = get(newest.clone()).await;
    let manifest: Value = serde_json::from_slice(&get(format!("{newest}.json")).await).unwrap();
    let put = |name: String, body: Vec<u8>| {
        let s3 = s3.clone();
        async move {
            s3.put(
                &object_store::path::Path::from(format!("site-b/{name}")),
                body.into(),
            )
            .await
            .unwrap();
        }
    };
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    let name = "usher-embedded-20260101T000000Z.redb".to_owned();
    let mut m = manifest.clone();
    m["file"] = json!(name);
    put(format!("{name}.json"), serde_json::to_vec(&m).unwrap()).await;
    put(name.clone(), damaged).await;
    let out = run_usher(
        &[
            "restore",
            "--from",
            &format!("s3://usher-backups/site-b/{name}"),
            "--data-dir",
            s(&restored),
            "--force",
        ],
        &env,
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("is damaged"), "{}", text(&out));

    // truncated, with a manifest that matches the truncated bytes: the store check refuses it
    let truncated = original[..original.len() / 3].to_vec();
    let (bytes, sha) = (truncated.len(), {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&truncated))
    });
    let name = "usher-embedded-20260101T000001Z.redb".to_owned();
    let mut m = manifest.clone();
    m["file"] = json!(name);
    m["bytes"] = json!(bytes);
    m["sha256"] = json!(sha);
    put(format!("{name}.json"), serde_json::to_vec(&m).unwrap()).await;
    put(name.clone(), truncated).await;
    let out = run_usher(
        &[
            "restore",
            "--from",
            &format!("s3://usher-backups/site-b/{name}"),
            "--data-dir",
            s(&restored),
            "--force",
        ],
        &env,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("not a usable Usher backup"),
        "{}",
        text(&out)
    );
    assert!(
        std::fs::read(restored.join("usher.redb")).unwrap() == before,
        "the restored store is untouched by the refused ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_snapshot_is_read_over_sync_checked_and_restored_as_dump_rdb() {
    let redis = usher_testkit::RedisServer::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..500 {
        let _: () = redis::cmd("SET")
            .arg(format!("usher:ticket:{i}"))
            .arg(format!("{{\"n\":{i}}}"))
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let rdb = dir.path().join("snapshot.rdb");
    let bytes = usher_server::backup::rdb::fetch(&redis.url(), &rdb)
        .await
        .unwrap();
    assert_eq!(bytes, std::fs::metadata(&rdb).unwrap().len());
    usher_server::backup::rdb::check(&rdb).await.unwrap();

    // restored as dump.rdb, a new Redis started on it holds every key
    let restored = dir.path().join("redis-data");
    let out = run_usher(
        &["restore", "--from", s(&rdb), "--data-dir", s(&restored)],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&restored)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}");
    let keys: usize = usher_testkit::wait_until(Duration::from_secs(20), "restored redis", || {
        let url = url.clone();
        async move {
            let mut con = redis::Client::open(url)
                .ok()?
                .get_multiplexed_async_connection()
                .await
                .ok()?;
            redis::cmd("DBSIZE").query_async(&mut con).await.ok()
        }
    })
    .await
    .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(keys, 500);

    // one changed byte, or a cut, is refused by the checksum and the end marker
    let mut data = std::fs::read(&rdb).unwrap();
    let damaged = dir.path().join("damaged.rdb");
    let middle = data.len() / 2;
    data[middle] ^= 0x01;
    std::fs::write(&damaged, &data).unwrap();
    let err = usher_server::backup::rdb::check(&damaged)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &data[..data.len() - 100]).unwrap();
    let out = run_usher(
        &[
            "restore",
            "--from",
            s(&cut),
            "--data-dir",
            s(&restored),
            "--force",
        ],
        &[],
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("truncated"), "{}", text(&out));
}
