//! The key endpoint and key registration on an in-process app (every answer checked against the API
//! document): a key goes only to a session holding its seat now, checked without moving its secret;
//! every refusal is a 403 with the session's reason; playlists the origin serves point key URIs at Usher;
//! registration is write-only and the store keeps no key in clear.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem, spawn_app_with};

const KEY_HEX: &str = "00112233445566778899aabbccddeeff";

fn key_id(n: u8) -> String {
    format!("ck_{}", format!("{n:02x}").repeat(16))
}

/// An app on a media folder of its own holding `enc/v/index.m3u8`, whose key URI names `key_id(1)` on
/// the packager's host.
async fn app_with_encrypted_folder() -> (TestApp, tempfile::TempDir) {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().join("enc").join("v");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        media.path().join("enc").join("master.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("index.m3u8"),
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://packager.example/keys/{}\",IV=0x00000000000000000000000000000000\n#EXTINF:2.0,\nseg_0.ts\n#EXT-X-ENDLIST\n",
            key_id(1)
        ),
    )
    .unwrap();
    std::fs::write(dir.join("seg_0.ts"), [0u8; 188]).unwrap();
    let path = media.path().to_owned();
    let app = spawn_app_with(move |c| c.media_dir = path).await;
    (app, media)
}

async fn put_key(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/content-keys/{id}")))
        .bearer_auth(&app.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A show on `folder` with `encryption`, open now, one device, newest wins.
async fn show(app: &TestApp, id: &str, folder: &str, encryption: &str) {
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let res = app
        .put_show(
            id,
            json!({
                "title": format!("Show {id}"),
                "starts_at": fmt(now - time::Duration::hours(1)),
                "ends_at": fmt(now + time::Duration::hours(2)),
                "stream_path": folder,
                "encryption": encryption,
            }),
        )
        .await;
    assert!(res.status().is_success(), "put show: {}", res.status());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["encryption"], encryption);
}

/// An app's admit: (session, secret, origin grant).
async fn admit(app: &TestApp, token: &str, device: &str) -> (String, String, String) {
    let res = app.admit(token, device).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    let grant = v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["cdn"] == "origin")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        v["session_id"].as_str().unwrap().to_owned(),
        v["session_secret"].as_str().unwrap().to_owned(),
        grant,
    )
}

async fn get_key(app: &TestApp, id: &str, seat: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = app.client.get(app.url(&format!("/keys/{id}")));
    if let Some((sid, secret)) = seat {
        req = req
            .header("x-usher-session", sid)
            .header("x-usher-session-secret", secret);
    }
    req.send().await.unwrap()
}

async fn assert_key(res: reqwest::Response) {
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(hex::encode(res.bytes().await.unwrap()), KEY_HEX);
}

#[tokio::test]
async fn keys_are_registered_write_only_once() {
    let (app, _media) = app_with_encrypted_folder().await;
    let id = key_id(1);
    let res = put_key(&app, &id, json!({"stream_path": "enc", "key": KEY_HEX})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["stream_path"], "enc");
    assert!(!text.to_lowercase().contains(KEY_HEX), "{text}");
    // the same key again (upper-case hex) is the same registration; another key or folder is a conflict
    let res = put_key(
        &app,
        &id,
        json!({"stream_path": "enc", "key": KEY_HEX.to_uppercase()}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let other = put_key(
        &app,
        &id,
        json!({"stream_path": "enc", "key": "ff".repeat(16)}),
    )
    .await;
    assert_problem(other, StatusCode::CONFLICT, "key_conflict").await;
    let moved = put_key(&app, &id, json!({"stream_path": "demo", "key": KEY_HEX})).await;
    assert_problem(moved, StatusCode::CONFLICT, "key_conflict").await;
    for bad in [
        json!({"stream_path": "enc", "key": "0011"}),
        json!({"stream_path": "../x", "key": KEY_HEX}),
        json!({"stream_path": "enc", "key": KEY_HEX, "iv": "x"}),
    ] {
        let res = put_key(&app, &key_id(2), bad).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let res = put_key(
        &app,
        "ck_nothex",
        json!({"stream_path": "enc", "key": KEY_HEX}),
    )
    .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    // the tickets scope may not register keys
    let res = app
        .client
        .put(app.url(&format!("/api/v1/content-keys/{}", key_id(3))))
        .bearer_auth(&app.tickets_key)
        .json(&json!({"stream_path": "enc", "key": KEY_HEX}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // the store holds the key wrapped: not its bytes, hex or base64
    app.state.store.flush().await.unwrap();
    let key = hex::decode(KEY_HEX).unwrap();
    let mut forms: Vec<Vec<u8>> = vec![
        key.clone(),
        KEY_HEX.as_bytes().to_vec(),
        KEY_HEX.to_uppercase().into_bytes(),
    ];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.push(
            engine
                .encode(&key)
                .trim_end_matches('=')
                .as_bytes()
                .to_vec(),
        );
    }
    for entry in std::fs::read_dir(&app.state.config.data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for form in &forms {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                "the data directory holds the key in clear ({form:?})"
            );
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_key_goes_only_to_the_session_holding_its_seat() {
    let (app, _media) = app_with_encrypted_folder().await;
    let id = key_id(1);
    let res = put_key(&app, &id, json!({"stream_path": "enc", "key": KEY_HEX})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    show(&app, "enc-show", "enc", "aes-128").await;
    let (_, token) = app.ticket("enc-show").await;
    let (a, a_secret, a_grant) = admit(&app, &token, "device-aaaa").await;

    // no credential, a malformed one, a wrong secret: refused with the reason
    assert_problem(
        get_key(&app, &id, None).await,
        StatusCode::FORBIDDEN,
        "session_secret_required",
    )
    .await;
    assert_problem(
        get_key(&app, &id, Some(("s_x", &a_secret))).await,
        StatusCode::FORBIDDEN,
        "session_secret_invalid",
    )
    .await;
    assert_problem(
        get_key(&app, &id, Some((&a, "AAAAAAAAAAAAAAAAAAAAAA"))).await,
        StatusCode::FORBIDDEN,
        "session_secret_invalid",
    )
    .await;
    // the seat holder gets it, as often as it asks, and the secret does not move: the same secret
    // still renews afterwards
    for _ in 0..3 {
        assert_key(get_key(&app, &id, Some((&a, &a_secret))).await).await;
    }
    let hb = app
        .client
        .post(app.url(&format!("/api/v1/playback/{a}/heartbeat")))
        .header("x-usher-session-secret", &a_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(hb.status(), StatusCode::OK);
    let a_next = hb.json::<Value>().await.unwrap()["session_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_key(get_key(&app, &id, Some((&a, &a_next))).await).await;
    // unknown key ids, and keys of folders the session's show does not stream from
    assert_problem(
        get_key(&app, &key_id(9), Some((&a, &a_next))).await,
        StatusCode::NOT_FOUND,
        "key_unknown",
    )
    .await;

    // the origin points the playlist's key URI at Usher, with the grant for native players
    let playlist = app
        .client
        .get(app.url(&format!("/o/{a_grant}/enc/v/index.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(playlist.status(), StatusCode::OK);
    let text = playlist.text().await.unwrap();
    let base = app.state.base_url.to_string();
    let want = format!("URI=\"{base}/keys/{id}?usher_grant={a_grant}\"");
    assert!(text.contains(&want), "{text}");
    assert!(!text.contains("packager.example"));
    let by_grant = |grant: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .get(app.url(&format!("/keys/{id}?usher_grant={grant}")))
                .send()
                .await
                .unwrap()
        }
    };
    assert_key(by_grant(a_grant.clone()).await).await;
    assert_problem(
        by_grant(format!("{a_grant}x")).await,
        StatusCode::FORBIDDEN,
        "grant_refused",
    )
    .await;

    // a second device takes the seat: the first one's key requests stop at once, by secret and by grant
    let (b, b_secret, _) = admit(&app, &token, "device-bbbb").await;
    let body = assert_problem(
        get_key(&app, &id, Some((&a, &a_next))).await,
        StatusCode::FORBIDDEN,
        "superseded",
    )
    .await;
    assert_eq!(body["status"], 403);
    assert_problem(
        by_grant(a_grant.clone()).await,
        StatusCode::FORBIDDEN,
        "grant_refused",
    )
    .await;
    assert_key(get_key(&app, &id, Some((&b, &b_secret))).await).await;

    // a copy of b's secret that fell two renewals behind is a clone
    let renew = |secret: String| {
        let app = &app;
        let b = b.clone();
        async move {
            let hb = app
                .client
                .post(app.url(&format!("/api/v1/playback/{b}/heartbeat")))
                .header("x-usher-session-secret", secret)
                .send()
                .await
                .unwrap();
            assert_eq!(hb.status(), StatusCode::OK);
            hb.json::<Value>().await.unwrap()["session_secret"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let next = renew(b_secret.clone()).await;
    renew(next).await;
    assert_problem(
        get_key(&app, &id, Some((&b, &b_secret))).await,
        StatusCode::FORBIDDEN,
        "session_cloned",
    )
    .await;

    // a seat of another show (plain, or streaming another folder) gets no key of this one
    show(&app, "plain", "enc", "none").await;
    let (_, plain_token) = app.ticket("plain").await;
    let (p, p_secret, _) = admit(&app, &plain_token, "device-cccc").await;
    assert_problem(
        get_key(&app, &id, Some((&p, &p_secret))).await,
        StatusCode::NOT_FOUND,
        "key_unknown",
    )
    .await;
    show(&app, "elsewhere", "other", "aes-128").await;
    let (_, other_token) = app.ticket("elsewhere").await;
    let (o, o_secret, _) = admit(&app, &other_token, "device-dddd").await;
    assert_problem(
        get_key(&app, &id, Some((&o, &o_secret))).await,
        StatusCode::NOT_FOUND,
        "key_unknown",
    )
    .await;

    // the metric counts what was served and what was refused
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["served", "superseded", "session_cloned", "key_unknown"] {
        assert!(
            metrics.contains(&format!(
                "usher_key_requests_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_watch_pages_cookie_fetches_keys() {
    let (app, _media) = app_with_encrypted_folder().await;
    let id = key_id(1);
    put_key(&app, &id, json!({"stream_path": "enc", "key": KEY_HEX})).await;
    show(&app, "enc-show", "enc", "aes-128").await;
    let (_, token) = app.ticket("enc-show").await;
    let (a, a_secret, _) = admit(&app, &token, "device-aaaa").await;
    let with_cookie = |value: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.client
                .get(app.url(&format!("/keys/{id}")))
                .header("cookie", format!("usher_seat={value}"))
                .send()
                .await
                .unwrap()
        }
    };
    assert_key(with_cookie(format!("{a}.{a_secret}")).await).await;
    assert_problem(
        with_cookie(format!("{a}.AAAAAAAAAAAAAAAAAAAAAA")).await,
        StatusCode::FORBIDDEN,
        "session_secret_invalid",
    )
    .await;
    assert_problem(
        with_cookie("garbage".into()).await,
        StatusCode::FORBIDDEN,
        "session_secret_required",
    )
    .await;
    app.shutdown().await;
}
