//! The built-in origin over HTTP: grants admit to files under their prefix while their session holds its
//! lease; expired, tampered, foreign-prefix, superseded and revoked grants are refused, and a grant never
//! opens a sibling show's folder; traversal and symlinks out of the media folder are refused; ranges and
//! content types are right.

use crate::support::{TestApp, assert_problem, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use serde_json::Value;
use usher_core::clock::UnixMs;
use usher_core::grant::Grant;
use usher_core::ids::SessionId;

struct Playing {
    session: String,
    token: String,
    grant: String,
    playlist_url: String,
}

async fn playing(app: &TestApp, device: &str) -> Playing {
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, device).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    Playing {
        session: v["session_id"].as_str().unwrap().to_owned(),
        grant: v["grants"][0]["token"].as_str().unwrap().to_owned(),
        playlist_url: v["playlist_url"].as_str().unwrap().to_owned(),
        token,
    }
}

/// `GET target` sent to the app itself over a raw socket, byte for byte: the status and the body.
async fn raw_get(app: &TestApp, target: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(
        format!("GET {target} HTTP/1.1\r\nHost: usher.test\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_grant_plays_the_whole_ladder_with_ranges() {
    let app = spawn_app().await;
    let p = playing(&app, "device-aaaa").await;
    let res = get(&app, &p.playlist_url).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    let master = res.text().await.unwrap();
    let variants: Vec<&str> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(variants.len(), 2, "{master}");
    assert!(
        variants
            .iter()
            .all(|v| v.starts_with("/o/") && v.ends_with("/index.m3u8")),
        "{master}"
    );
    let res = get(&app, variants[0]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let media = res.text().await.unwrap();
    let seg = media
        .lines()
        .find(|l| l.ends_with(".ts"))
        .expect("a segment");
    let base = variants[0].rsplit_once('/').unwrap().0;
    let seg_url = format!("{base}/{seg}");
    let res = get(&app, &seg_url).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "video/mp2t");
    let full = res.bytes().await.unwrap();
    assert_eq!(full[0], 0x47, "an MPEG-TS sync byte");
    let res = app
        .client
        .get(app.url(&seg_url))
        .header("range", "bytes=100-299")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-299/{}", full.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), full.slice(100..300));
    let res = app.client.head(app.url(&seg_url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-length"],
        full.len().to_string().as_str()
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grants_are_refused() {
    let app = spawn_app().await;
    let p = playing(&app, "device-aaaa").await;
    let path = "demo/360p/index.m3u8";
    assert_eq!(
        get(&app, &format!("/o/{}/{path}", p.grant)).await.status(),
        StatusCode::OK
    );
    let session = SessionId::parse(&p.session).unwrap();
    let now = app.state.store.now();
    let expired = app.state.grants.sign(&Grant {
        session: session.clone(),
        expires_at: UnixMs(now.0 - 1000),
        prefix: "demo/".into(),
        client: None,
    });
    let foreign = app.state.grants.sign(&Grant {
        session: session.clone(),
        expires_at: now.plus_secs(60),
        prefix: "other/".into(),
        client: None,
    });
    let narrow = app.state.grants.sign(&Grant {
        session,
        expires_at: now.plus_secs(60),
        prefix: "dem/".into(),
        client: None,
    });
    let mut tampered = p.grant.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (what, grant) in [
        ("expired", expired),
        ("foreign prefix", foreign),
        ("sibling prefix", narrow),
        ("tampered", tampered),
        ("garbage", "x.y".into()),
    ] {
        let res = get(&app, &format!("/o/{grant}/{path}")).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{what}");
        assert_problem(res, StatusCode::FORBIDDEN, "grant_refused").await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_or_revoked_session_is_cut_off_at_once() {
    let app = spawn_app().await;
    let p = playing(&app, "device-aaaa").await;
    let url = format!("/o/{}/demo/360p/index.m3u8", p.grant);
    assert_eq!(get(&app, &url).await.status(), StatusCode::OK);
    let res = app.admit(&p.token, "device-bbbb").await;
    let b: Value = res.json().await.unwrap();
    assert_problem(
        get(&app, &url).await,
        StatusCode::FORBIDDEN,
        "grant_refused",
    )
    .await;
    // the superseded player still holds its secret (in its playlist URL): it learns why
    assert_problem(
        get(&app, &p.playlist_url).await,
        StatusCode::CONFLICT,
        "superseded",
    )
    .await;
    let b_url = format!(
        "/o/{}/demo/360p/index.m3u8",
        b["grants"][0]["token"].as_str().unwrap()
    );
    assert_eq!(get(&app, &b_url).await.status(), StatusCode::OK);
    let id = b["ticket_id"].as_str().unwrap();
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{id}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_problem(
        get(&app, &b_url).await,
        StatusCode::FORBIDDEN,
        "grant_refused",
    )
    .await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_symlinks_out_of_the_media_folder_are_refused() {
    let media = tempfile::tempdir().unwrap();
    let demo = media.path().join("demo");
    std::fs::create_dir_all(&demo).unwrap();
    std::fs::copy(
        crate::support::media_dir().join("demo/master.m3u8"),
        demo.join("master.m3u8"),
    )
    .unwrap();
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), b"SECRET-OUTSIDE-MEDIA").unwrap();
    std::os::unix::fs::symlink(secret.path(), demo.join("evil.ts")).unwrap();
    std::fs::write(media.path().join("outside.ts"), b"SECRET-NOT-UNDER-PREFIX").unwrap();
    let media_path = media.path().to_owned();
    let app = spawn_app_with(move |c| c.media_dir = media_path).await;
    let p = playing(&app, "device-aaaa").await;
    let g = &p.grant;
    assert_eq!(
        get(&app, &format!("/o/{g}/demo/master.m3u8"))
            .await
            .status(),
        StatusCode::OK
    );
    // Each path goes over a raw socket exactly as written (an HTTP client would resolve `%2e%2e` and `//`
    // before sending, and the request would then fail on the grant's folder, not on the path), under a
    // grant that is valid for `demo/`: the only refusal left is the media path's own.
    for path in [
        "demo/evil.ts",
        "demo/%2e%2e/outside.ts",
        "demo/%2E%2E/%2E%2E/etc/passwd",
        "demo/..%2foutside.ts",
        "demo/%2e%2e%2f%2e%2e%2fetc/passwd",
        "demo/../outside.ts",
        "demo/%5C..%5Coutside.ts",
        "demo/.hidden",
        "demo//master.m3u8",
        "demo/missing.ts",
    ] {
        let (status, body) = raw_get(&app, &format!("/o/{g}/{path}")).await;
        assert!(!body.contains("SECRET-"), "{path} leaked a file");
        assert_eq!(status, 404, "{path}: {body}");
        let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(problem["code"], "media_unknown", "{path}: {body}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_never_opens_a_sibling_folder_whose_name_starts_the_same() {
    // `demo` and `demoX` are two shows' folders: a grant for `demo/` covers the first only
    let media = tempfile::tempdir().unwrap();
    for folder in ["demo", "demoX"] {
        let dir = media.path().join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            crate::support::media_dir().join("demo/master.m3u8"),
            dir.join("master.m3u8"),
        )
        .unwrap();
        std::fs::write(dir.join("seg.ts"), format!("SEGMENT-OF-{folder}")).unwrap();
    }
    let media_path = media.path().to_owned();
    let app = spawn_app_with(move |c| c.media_dir = media_path).await;
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let mut grants = Vec::new();
    for (id, folder) in [("main", "demo"), ("extra", "demoX")] {
        let res = app
            .put_show(
                id,
                serde_json::json!({
                    "title": id,
                    "starts_at": fmt(now - time::Duration::hours(1)),
                    "ends_at": fmt(now + time::Duration::hours(2)),
                    "stream_path": folder,
                }),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{id}");
        let (_, token) = app.ticket(id).await;
        let res = app.admit(&token, &format!("device-{id}")).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        grants.push(v["grants"][0]["token"].as_str().unwrap().to_owned());
    }
    let (main, extra) = (&grants[0], &grants[1]);
    for (grant, path, want) in [
        (main, "demo/seg.ts", Some("SEGMENT-OF-demo")),
        (main, "demoX/seg.ts", None),
        (main, "demoX/master.m3u8", None),
        (extra, "demoX/seg.ts", Some("SEGMENT-OF-demoX")),
        (extra, "demo/seg.ts", None),
    ] {
        let res = get(&app, &format!("/o/{grant}/{path}")).await;
        match want {
            Some(body) => {
                assert_eq!(res.status(), StatusCode::OK, "{path}");
                assert_eq!(res.text().await.unwrap(), body);
            }
            None => {
                assert_problem(res, StatusCode::FORBIDDEN, "grant_refused").await;
            }
        }
    }
    app.shutdown().await;
}
