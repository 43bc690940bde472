//! Rotating `secrets.token_key` and `secrets.grant_key` on the real binary: restarted with the new keys
//! and the old ones as `previous_*`, a node still finds every ticket, API key and playing session stored
//! under the old token key, accepts grants signed with the old grant key, and stores and signs everything
//! new under the new keys; without the previous keys, what was stored under the old ones is not found.

use std::path::Path;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::ServeProcess;

const OLD_TOKEN_KEY: &str = "rotation-old-token-key-0123456789abcdef";
const NEW_TOKEN_KEY: &str = "rotation-new-token-key-0123456789abcdef";
const OLD_GRANT_KEY: &str = "rotation-old-grant-key-0123456789abcdef";
const NEW_GRANT_KEY: &str = "rotation-new-grant-key-0123456789abcdef";

fn usher_bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_usher"))
}

fn write_config(dir: &Path, name: &str, secrets: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = '{}'\nmedia_dir = '{}'\n[log]\nformat = \"json\"\n[secrets]\n{secrets}\n",
            dir.join("data").display(),
            usher_testkit::repo_root().join("media").display()
        ),
    )
    .unwrap();
    path
}

async fn admit(http: &Client, base: &str, token: &str, device: &str) -> (StatusCode, Value) {
    let res = http
        .post(format!("{base}/api/v1/playback"))
        .header("x-usher-device", device)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

async fn heartbeat(http: &Client, base: &str, session: &str, secret: &str) -> (StatusCode, Value) {
    let res = http
        .post(format!("{base}/api/v1/playback/{session}/heartbeat"))
        .header("x-usher-session-secret", secret)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or_default())
}

/// The origin's grant of an admit answer.
fn origin_grant(answer: &Value) -> String {
    answer["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cdn"] == "origin")
        .and_then(|g| g["token"].as_str())
        .expect("an origin grant")
        .to_owned()
}

/// The demo stream's master playlist through the origin with `grant`.
async fn media(http: &Client, base: &str, grant: &str) -> StatusCode {
    http.get(format!("{base}/o/{grant}/demo/master.m3u8"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_token_and_grant_keys_drops_no_ticket_key_or_playing_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let http = Client::new();
    let old = write_config(
        dir.path(),
        "old.toml",
        &format!("token_key = \"{OLD_TOKEN_KEY}\"\ngrant_key = \"{OLD_GRANT_KEY}\""),
    );
    let out = tokio::process::Command::new(usher_bin())
        .args(["api-key", "create", "--config"])
        .arg(&old)
        .args(["--name", "site", "--scope", "admin"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    // before: a show, two tickets, one of them playing
    let mut server = ServeProcess::start(&usher_bin(), &old).await.unwrap();
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
    let res = http
        .post(format!("{base}/api/v1/tickets/batch"))
        .bearer_auth(&key)
        .json(&json!({"tickets": [{"show_id": "gig"}, {"show_id": "gig"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let batch: Value = res.json().await.unwrap();
    let tokens: Vec<String> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ticket"]["token"].as_str().unwrap().to_owned())
        .collect();
    let second_id = batch["results"][1]["ticket"]["id"].clone();
    let (status, admitted) = admit(&http, &base, &tokens[0], "tv-living-room").await;
    assert_eq!(status, StatusCode::CREATED, "{admitted}");
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    let secret = admitted["session_secret"].as_str().unwrap().to_owned();
    let old_grant = origin_grant(&admitted);
    assert_eq!(media(&http, &base, &old_grant).await, StatusCode::OK);
    // the leases reach the disk every second
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;

    // during: new keys, the old ones as previous
    let rotating = write_config(
        dir.path(),
        "rotating.toml",
        &format!(
            "token_key = \"{NEW_TOKEN_KEY}\"\nprevious_token_key = \"{OLD_TOKEN_KEY}\"\n\
             grant_key = \"{NEW_GRANT_KEY}\"\nprevious_grant_key = \"{OLD_GRANT_KEY}\""
        ),
    );
    let mut server = ServeProcess::start(&usher_bin(), &rotating).await.unwrap();
    let base = server.base_url.clone();
    // the playing viewer's next heartbeat renews: its secret was stored under the old key
    let (status, beat) = heartbeat(&http, &base, &session, &secret).await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    let next = beat["session_secret"].as_str().unwrap().to_owned();
    // and the one after, with the secret handed out under the new key
    let (status, beat) = heartbeat(&http, &base, &session, &next).await;
    assert_eq!(status, StatusCode::OK, "{beat}");
    let secret = beat["session_secret"].as_str().unwrap().to_owned();
    // the grant it held from before the rotation still opens media, and so does the new one
    assert_eq!(media(&http, &base, &old_grant).await, StatusCode::OK);
    let new_grant = origin_grant(&beat);
    assert_eq!(media(&http, &base, &new_grant).await, StatusCode::OK);
    // the API key made before the rotation, and the other ticket's token
    let res = http
        .get(format!("{base}/api/v1/shows"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, second) = admit(&http, &base, &tokens[1], "phone-0001").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    // the site registering an old ticket's token again gets that ticket, not a second one
    let res = http
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(&key)
        .json(&json!({"show_id": "gig", "token": tokens[1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a repeat, not a new ticket");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["id"], second_id, "{again}");
    // a ticket registered now is stored under the new key
    let res = http
        .post(format!("{base}/api/v1/tickets/batch"))
        .bearer_auth(&key)
        .json(&json!({"tickets": [{"show_id": "gig"}]}))
        .send()
        .await
        .unwrap();
    let batch: Value = res.json().await.unwrap();
    let new_token = batch["results"][0]["ticket"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().await;

    // after: the previous keys dropped; what was renewed or made under the new keys goes on
    let new = write_config(
        dir.path(),
        "new.toml",
        &format!("token_key = \"{NEW_TOKEN_KEY}\"\ngrant_key = \"{NEW_GRANT_KEY}\""),
    );
    let server = ServeProcess::start(&usher_bin(), &new).await.unwrap();
    let base = server.base_url.clone();
    let (status, beat) = heartbeat(&http, &base, &session, &secret).await;
    assert_eq!(status, StatusCode::OK, "a renewed session lives on: {beat}");
    let (status, fresh) = admit(&http, &base, &new_token, "laptop-0001").await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    // the old key's secrets are gone with it: this is why the previous key stays until they are renewed
    let res = http
        .get(format!("{base}/api/v1/shows"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(media(&http, &base, &old_grant).await, StatusCode::FORBIDDEN);
    assert_eq!(media(&http, &base, &new_grant).await, StatusCode::OK);
    drop(server);
}
