//! The CDN pool: the admin API (write-only keys, the built-in origin), multi-CDN delivery (grants per CDN,
//! content steering, the steering manifest as a heartbeat), and interop with a real edge: nginx from
//! Debian with `secure_link` in front of the demo media as CDN "a", Usher's origin as the second pathway.
//! Health probes: they demote and restore a CDN, reach no private address unless allowed, and read a
//! bounded part of an answer.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{TestApp, assert_problem, media_dir, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) const NGINX_SECRET: &str = "nginx-edge-secret-7f3a9c2e5b";

pub(crate) struct Nginx {
    child: Child,
    pub(crate) port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its worker too (SIGKILL would leave the worker serving).
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// Starts nginx on a free loopback port with `secure_link` over the demo media: links are
/// `/<hash>,<expires>/<folder>/<file>`, the hash covering the expiry and the folder (`secure_link_md5
/// "$secure_link_expires$prefix <secret>"`); a bad hash answers 403, an expired link 410. Under `/ip/` the
/// hash also covers the client's address (`$remote_addr`). Under `/c/` the link's plain path is checked
/// against a cookie `usher_link=<hash>,<expires>` whose hash covers the expiry and the folder's *name*
/// (`$folder`, `demo`), as Usher's nginx cookie delivery with `prefix_holds = "folder"` signs it.
pub(crate) async fn start_nginx() -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let media = std::fs::canonicalize(media_dir()).unwrap();
    let d = dir.path().display();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }}
  server {{
    listen 127.0.0.1:{port};
    location ~ ^/c/(?<folder>[^/]+)/(?<file>.*)$ {{
      secure_link $cookie_usher_link;
      secure_link_md5 "$secure_link_expires$folder {NGINX_SECRET}";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      alias {media}/$folder/$file;
    }}
    location ~ ^/(?<secure>[\w-]+,\d+)(?<prefix>/ip(?<folder>/[^/]+/))(?<file>.*)$ {{
      secure_link $secure;
      secure_link_md5 "$secure_link_expires$prefix$remote_addr {NGINX_SECRET}";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      alias {media}$folder$file;
    }}
    location ~ ^/(?<secure>[\w-]+,\d+)(?<prefix>/[^/]+/)(?<file>.*)$ {{
      secure_link $secure;
      secure_link_md5 "$secure_link_expires$prefix {NGINX_SECRET}";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      alias {media}$prefix$file;
    }}
    location / {{ return 403; }}
  }}
}}
"#,
        user = if root { "user root;" } else { "" },
        media = media.display(),
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(nginx_binary())
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nginx must be installed (scripts/test.sh installs Debian's nginx)");
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nginx
}

fn nginx_signing() -> Value {
    json!({
        "scheme": "nginx",
        "secret": NGINX_SECRET,
        "delivery": "path",
        "prefix_variable": "prefix",
        "expression": "$secure_link_expires$prefix $secret",
    })
}

pub(crate) async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// `PATCH` with the admin key.
async fn patch(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    admin(app, reqwest::Method::PATCH, path, Some(body)).await
}

async fn get_text(app: &TestApp, url: &str) -> (StatusCode, String) {
    let res = app.client.get(url).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The URI after the first `#EXT-X-STREAM-INF` of `pathway`.
fn variant_uri(master: &str, pathway: &str) -> Option<String> {
    let lines: Vec<&str> = master.lines().collect();
    let tag = format!("PATHWAY-ID=\"{pathway}\"");
    lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-STREAM-INF") && l.contains(&tag))
        .map(|i| lines[i + 1].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_keeps_keys_write_only_and_the_origin_built_in() {
    let app = spawn_app().await;
    let secret = "write-only-secret-d41d8cd98f";
    let signing = json!({"scheme": "nginx", "secret": secret});
    let spec = json!({"name": "CDN A", "base_url": "https://a.cdn.example/", "signing": signing, "priority": 10});

    let res = admin(&app, reqwest::Method::GET, "/api/v1/cdns", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["cdns"][0]["id"], "origin");
    assert_eq!(v["cdns"][0]["builtin"], true);

    let mut bodies = Vec::new();
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(spec.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    bodies.push(res.text().await.unwrap());
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(spec.clone()),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    bodies.push(res.text().await.unwrap());
    for path in ["/api/v1/cdns", "/api/v1/cdns/a"] {
        let res = admin(&app, reqwest::Method::GET, path, None).await;
        assert_eq!(res.status(), StatusCode::OK);
        bodies.push(res.text().await.unwrap());
    }
    let one: Value = serde_json::from_str(&bodies[3]).unwrap();
    assert_eq!(one["key_set"], true);
    assert_eq!(one["scheme"], "nginx");
    assert_eq!(one["base_url"], "https://a.cdn.example");
    assert_eq!(one["priority"], 10);
    assert_eq!(one["health"]["state"], "unknown");
    assert!(one.get("signing").is_none());

    // A malformed configuration is refused without echoing what was sent.
    let bad = json!({"name": "x", "base_url": "https://x.example", "signing": {"scheme": "akamai", "key": "zz-not-hex-secret-value"}});
    let res = admin(&app, reqwest::Method::PUT, "/api/v1/cdns/x", Some(bad)).await;
    bodies.push(
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "signing_key_invalid")
            .await
            .to_string(),
    );
    let unknown = json!({"name": "x", "base_url": "https://x.example", "signing": {"scheme": "nginx", "secret": secret, "secrett": "y"}});
    let res = admin(&app, reqwest::Method::PUT, "/api/v1/cdns/x", Some(unknown)).await;
    bodies.push(
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request")
            .await
            .to_string(),
    );
    for body in &bodies {
        assert!(!body.contains(secret), "a key leaked: {body}");
        assert!(!body.contains("zz-not-hex"), "a key leaked: {body}");
    }

    // The origin: not replaceable, not deletable, disabled only while another CDN is enabled.
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/origin",
        Some(spec.clone()),
    )
    .await;
    assert_problem(res, StatusCode::CONFLICT, "cdn_builtin").await;
    let res = admin(&app, reqwest::Method::DELETE, "/api/v1/cdns/origin", None).await;
    assert_problem(res, StatusCode::CONFLICT, "cdn_builtin").await;
    let res = patch(
        &app,
        "/api/v1/cdns/origin",
        json!({"enabled": false, "weight": 3}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(
        (v["enabled"].clone(), v["weight"].clone()),
        (json!(false), json!(3))
    );
    let res = patch(&app, "/api/v1/cdns/a", json!({"enabled": false})).await;
    assert_problem(res, StatusCode::CONFLICT, "cdn_pool_empty").await;
    let res = admin(&app, reqwest::Method::DELETE, "/api/v1/cdns/a", None).await;
    assert_problem(res, StatusCode::CONFLICT, "cdn_pool_empty").await;
    let res = patch(&app, "/api/v1/cdns/origin", json!({"enabled": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = patch(&app, "/api/v1/cdns/a", json!({"priority": 5, "nope": 1})).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = admin(&app, reqwest::Method::DELETE, "/api/v1/cdns/a", None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = admin(&app, reqwest::Method::GET, "/api/v1/cdns/a", None).await;
    assert_problem(res, StatusCode::NOT_FOUND, "cdn_unknown").await;

    // Scope admin only.
    let res = app.get_with("/api/v1/cdns", &app.tickets_key).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .client
        .get(app.url("/api/v1/cdns"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_edge_accepts_what_usher_signs_and_steering_follows_the_pool() {
    let nginx = start_nginx().await;
    let app = spawn_app().await;
    let edge = format!("http://127.0.0.1:{}", nginx.port);
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(json!({"name": "CDN A (nginx)", "base_url": edge, "signing": nginx_signing(), "priority": 10})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let listing = admin(&app, reqwest::Method::GET, "/api/v1/cdns", None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!listing.contains(NGINX_SECRET));

    // a grant of an hour: a clone's id changes each half lifetime, and the check below that a reload
    // keeps the id must not straddle such a change (with the default 30 s it did, now and then)
    let mut spec = app.open_show("cdn-show", 1, "newest_wins").await;
    for key in ["id", "poster", "created_at", "updated_at", "lease_ttl_s"] {
        spec.as_object_mut().unwrap().remove(key);
    }
    spec["grant_ttl_s"] = json!(3600);
    assert!(app.put_show("cdn-show", spec).await.status().is_success());
    let (ticket_id, token) = app.ticket("cdn-show").await;
    let res = app.admit(&token, "device-cdn-0001").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let session = body["session_id"].as_str().unwrap().to_owned();
    let secret = body["session_secret"].as_str().unwrap().to_owned();
    assert_eq!(body["cdn_order"], json!(["a", "origin"]));
    assert_eq!(body["grants"][0]["cdn"], "a");
    assert_eq!(body["grants"][1]["cdn"], "origin");
    assert!(!body.to_string().contains(NGINX_SECRET));

    // The grant's URL for A plays from nginx: the master, a variant playlist and a segment.
    let master_a = body["grants"][0]["url"].as_str().unwrap().to_owned();
    assert!(master_a.starts_with(&format!("{edge}/")), "{master_a}");
    let (status, text) = get_text(&app, &master_a).await;
    assert_eq!(status, StatusCode::OK, "{master_a}");
    assert!(text.starts_with("#EXTM3U"));

    // Usher's personalized master: each rendition once per pathway, A first, with content steering.
    let (status, master) = get_text(&app, &app.url(&format!("/hls/{session}/master.m3u8"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(master.contains(&format!(
        "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/hls/{session}/steering.json\",PATHWAY-ID=\"a\""
    )));
    assert_eq!(master.matches("PATHWAY-ID=\"a\"").count(), 3, "{master}");
    assert_eq!(
        master.matches("PATHWAY-ID=\"origin\"").count(),
        2,
        "{master}"
    );
    assert!(
        master.find("PATHWAY-ID=\"a\"\n").unwrap() < master.find("PATHWAY-ID=\"origin\"").unwrap()
    );
    let variant_a = variant_uri(&master, "a").unwrap();
    let (status, playlist) = get_text(&app, &variant_a).await;
    assert_eq!(status, StatusCode::OK, "{variant_a}");
    let segment = playlist
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    let segment_url = format!("{}/{segment}", variant_a.rsplit_once('/').unwrap().0);
    let res = app.client.get(&segment_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{segment_url}");
    assert!(!res.bytes().await.unwrap().is_empty());
    let variant_o = variant_uri(&master, "origin").unwrap();
    let (status, _) = get_text(&app, &app.url(&variant_o)).await;
    assert_eq!(status, StatusCode::OK, "{variant_o}");

    // What nginx refuses: tampered hash (403), another expiry (403), another folder (403), expired (410).
    let (scheme_host, rest) = variant_a.split_at(edge.len());
    let (hash_exp, path) = rest[1..].split_once('/').unwrap();
    let (hash, exp) = hash_exp.split_once(',').unwrap();
    let flip = |h: &str| {
        let mut c: Vec<char> = h.chars().collect();
        c[0] = if c[0] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect::<String>()
    };
    let exp_n: i64 = exp.parse().unwrap();
    for (url, want) in [
        (
            format!("{scheme_host}/{},{exp}/{path}", flip(hash)),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("{scheme_host}/{hash},{}/{path}", exp_n + 1),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("{scheme_host}/{hash},{exp}/media-other/360p/index.m3u8"),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("{scheme_host}/demo/360p/index.m3u8"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let res = app.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), want, "{url}");
    }
    let scheme: usher_cdn::Scheme = serde_json::from_value(nginx_signing()).unwrap();
    let past = time::OffsetDateTime::now_utc().unix_timestamp() - 60;
    let expired = scheme
        .sign(
            &usher_cdn::SignRequest::url(format!("{edge}/demo/master.m3u8"), past)
                .with_prefix("/demo/"),
        )
        .unwrap();
    let res = app.client.get(&expired.url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::GONE, "{}", expired.url);
    // Address-bound links (`$remote_addr` in the expression, under /ip/): the viewer's address passes, another
    // address's link is refused.
    let ip_scheme: usher_cdn::Scheme = serde_json::from_value(json!({
        "scheme": "nginx", "secret": NGINX_SECRET, "delivery": "path", "prefix_variable": "prefix",
        "expression": "$secure_link_expires$prefix$remote_addr $secret",
    }))
    .unwrap();
    let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 60;
    for (ip, want) in [
        ("127.0.0.1", StatusCode::OK),
        ("127.0.0.2", StatusCode::FORBIDDEN),
    ] {
        let signed = ip_scheme
            .sign(
                &usher_cdn::SignRequest::url(format!("{edge}/ip/demo/360p/index.m3u8"), soon)
                    .with_prefix("/ip/demo/")
                    .for_client(ip.parse().unwrap()),
            )
            .unwrap();
        let res = app.client.get(&signed.url).send().await.unwrap();
        assert_eq!(res.status(), want, "signed for {ip}: {}", signed.url);
    }

    // The steering manifest: pathways from the pool, and each reload of a native player (the secret in
    // its URL, from the master's SERVER-URI) renews the lease and hands the next secret in RELOAD-URI.
    let steering = app.url(&format!("/hls/{session}/steering.json?secret={secret}"));
    let before = admin(&app, reqwest::Method::GET, "/api/v1/sessions", None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app.client.get(&steering).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let m: Value = res.json().await.unwrap();
    let reload = m["RELOAD-URI"].as_str().unwrap();
    assert!(
        reload.starts_with(&format!("/hls/{session}/steering.json?secret="))
            && !reload.ends_with(&secret),
        "the next reload carries the next secret: {reload}"
    );
    // a player that cannot swap grants gets a clone of the origin pathway carrying a fresh grant in the
    // query (nginx's grant rides in the path, so A has none), listed before its base
    let clones = m["PATHWAY-CLONES"].as_array().expect("clones").clone();
    assert_eq!(clones.len(), 1, "{m}");
    assert_eq!(clones[0]["BASE-ID"], "origin");
    let clone_id = clones[0]["ID"].as_str().unwrap().to_owned();
    assert!(clone_id.starts_with("origin.g"), "{clone_id}");
    assert_eq!(
        m["PATHWAY-PRIORITY"],
        json!(["a", clone_id.clone(), "origin"])
    );
    let fresh = clones[0]["URI-REPLACEMENT"]["PARAMS"]["usher_grant"]
        .as_str()
        .unwrap()
        .to_owned();
    // the query grant wins over a stale one in the path
    let url = app.url(&format!(
        "/o/stale-grant/demo/360p/index.m3u8?usher_grant={fresh}"
    ));
    assert_eq!(get_text(&app, &url).await.0, StatusCode::OK);
    let url = app.url("/o/stale-grant/demo/360p/index.m3u8?usher_grant=forged.grant");
    assert_eq!(get_text(&app, &url).await.0, StatusCode::FORBIDDEN);
    // the same clone id until half the grant's lifetime passed: players ignore known ids
    let again: Value = app
        .client
        .get(&steering)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["PATHWAY-CLONES"][0]["ID"], clone_id);
    // the watch page's player swaps grants itself: no clones for it
    let res = app
        .client
        .get(app.url(&format!(
            "/hls/{session}/steering.json?_HLS_pathway=a&usher_player=web"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let m: Value = res.json().await.unwrap();
    assert_eq!(
        m,
        json!({"VERSION": 1, "TTL": 15, "RELOAD-URI": format!("/hls/{session}/steering.json"), "PATHWAY-PRIORITY": ["a", "origin"]})
    );
    let after = admin(&app, reqwest::Method::GET, "/api/v1/sessions", None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let expiry = |v: &Value| v["sessions"][0]["expires_at"].as_str().unwrap().to_owned();
    assert!(expiry(&after) > expiry(&before), "{before} {after}");

    // Disabling A takes effect at once: steering, playlist and heartbeat.
    let res = patch(&app, "/api/v1/cdns/a", json!({"enabled": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let m: Value = app
        .client
        .get(format!("{steering}&usher_player=web"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["PATHWAY-PRIORITY"], json!(["origin"]));
    let (_, master) = get_text(&app, &app.url(&format!("/hls/{session}/master.m3u8"))).await;
    assert!(!master.contains("PATHWAY-ID=\"a\""), "{master}");
    assert!(master.contains("PATHWAY-ID=\"origin\""));
    let hb: Value = app.heartbeat(&session).await.json().await.unwrap();
    assert_eq!(hb["cdn_order"], json!(["origin"]));
    assert_eq!(hb["grants"].as_array().unwrap().len(), 1);

    // A superseded session's steering answers 410; a revoked one's 403.
    let res = app.admit(&token, "device-cdn-0002").await;
    let second: Value = res.json().await.unwrap();
    let res = app.client.get(&steering).send().await.unwrap();
    assert_problem(res, StatusCode::GONE, "superseded").await;
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tickets/{ticket_id}/revoke")))
        .bearer_auth(&app.tickets_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client
        .get(app.url(&format!(
            "/hls/{}/steering.json",
            second["session_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "ticket_revoked").await;
    app.shutdown().await;
    drop(nginx);
}

/// The real binary, logging JSON at debug level to a file: a CDN's signing key never appears in a log line
/// (nor in an answer) while the pool is written, listed, refused and used for delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "log-probe-secret-a9f1c3e7d5b2";
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = '{}'\nmedia_dir = '{}'\n[log]\nformat = \"json\"\nlevel = \"debug\"\n[secrets]\ntoken_key = \"cdn-log-test-token-key-0123456789abcdefgh\"\ngrant_key = \"cdn-log-test-grant-key-0123456789abcdefgh\"\n",
            dir.path().join("data").display(),
            media_dir().display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_usher");
    let made = Command::new(bin)
        .args(["api-key", "create", "--config"])
        .arg(&config)
        .args(["--name", "ops", "--scope", "admin"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = dir.path().join("usher.log");
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "usher did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut answers = Vec::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut req = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(&key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let good = json!({"name": "A", "base_url": "https://a.example", "priority": 1, "signing": {
        "scheme": "nginx", "secret": secret, "delivery": "path", "prefix_variable": "prefix",
        "expression": "$secure_link_expires$prefix $secret"}});
    let bad = json!({"name": "B", "base_url": "https://b.example", "signing": {"scheme": "nginx", "secret": secret, "expression": "$uri no secret here"}});
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let show = json!({"title": "S", "starts_at": fmt(now - time::Duration::hours(1)),
        "ends_at": fmt(now + time::Duration::hours(1)), "stream_path": "demo"});
    for (m, p, b) in [
        (reqwest::Method::PUT, "/api/v1/cdns/a", Some(good.clone())),
        (reqwest::Method::PUT, "/api/v1/cdns/a", Some(good)),
        (reqwest::Method::PUT, "/api/v1/cdns/b", Some(bad)),
        (reqwest::Method::GET, "/api/v1/cdns", None),
        (reqwest::Method::GET, "/api/v1/cdns/a", None),
        (
            reqwest::Method::PATCH,
            "/api/v1/cdns/a",
            Some(json!({"weight": 2})),
        ),
        (reqwest::Method::PUT, "/api/v1/shows/s", Some(show)),
    ] {
        let res = call(m, p, b).await.unwrap();
        answers.push(format!(
            "{p} {} {}",
            res.status(),
            res.text().await.unwrap()
        ));
    }
    let res = call(
        reqwest::Method::POST,
        "/api/v1/tickets",
        Some(json!({"show_id": "s"})),
    )
    .await
    .unwrap();
    let ticket: Value = res.json().await.unwrap();
    let res = client
        .post(format!("{base}/api/v1/playback"))
        .header("x-usher-device", "device-log-0001")
        .json(&json!({"token": ticket["token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let admitted: Value = res.json().await.unwrap();
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    let session_secret = admitted["session_secret"].as_str().unwrap().to_owned();
    assert_eq!(admitted["cdn_order"], json!(["a", "origin"]));
    answers.push(admitted.to_string());
    for path in [
        admitted["playlist_url"].as_str().unwrap().to_owned(),
        format!("/hls/{session}/steering.json?secret={session_secret}"),
    ] {
        let res = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        answers.push(res.text().await.unwrap());
    }
    let res = client
        .post(format!("{base}/api/v1/playback/{session}/heartbeat"))
        .header("x-usher-session-secret", &session_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    answers.push(res.text().await.unwrap());
    assert!(
        answers[0].starts_with("/api/v1/cdns/a 201"),
        "{}",
        answers[0]
    );
    assert!(
        answers[2].starts_with("/api/v1/cdns/b 422"),
        "{}",
        answers[2]
    );
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("CDN written"), "the log is captured: {log}");
    for a in &answers {
        assert!(!a.contains(secret), "a key in an answer: {a}");
    }
    for line in log.lines() {
        assert!(!line.contains(secret), "a key in the log: {line}");
        // a session's id is a handle for admins, and its secret controls it: logs carry a keyed tag
        assert!(!line.contains(&session), "a session id in the log: {line}");
        assert!(
            !line.contains(&session_secret),
            "a session secret in the log: {line}"
        );
    }
    assert!(log.contains("session.tag"), "admits are logged with a tag");
}

/// The health of CDN `id` as the admin API shows it.
async fn health(app: &TestApp, id: &str) -> Value {
    let v: Value = admin(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/cdns/{id}"),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    v["health"].clone()
}

async fn wait_health(app: &TestApp, id: &str, state: &str) -> Value {
    usher_testkit::wait_until(
        Duration::from_secs(15),
        &format!("CDN {id} {state}"),
        || async {
            let h = health(app, id).await;
            (h["state"] == state).then_some(h)
        },
    )
    .await
    .unwrap()
}

async fn steering(app: &TestApp, session: &str) -> Value {
    let (status, text) = get_text(
        app,
        &app.url(&format!("/hls/{session}/steering.json?usher_player=web")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_demote_a_failing_cdn_and_bring_it_back() {
    let nginx = start_nginx().await;
    let app = crate::support::spawn_app_with(|c| {
        c.cdn_probe.interval_ms = 200;
        c.cdn_probe.timeout_ms = 1000;
        c.cdn_probe.fail_after = 2;
        c.cdn_probe.recover_after = 3;
        // the edge is on loopback
        c.cdn_probe.allow_private_targets = true;
    })
    .await;
    let spec = |port: u16| {
        json!({"name": "CDN A", "base_url": format!("http://127.0.0.1:{port}"), "signing": nginx_signing(),
               "priority": 10, "canary": "demo/master.m3u8"})
    };
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(spec(nginx.port)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["canary"], "demo/master.m3u8");
    assert_eq!(view["health"]["state"], "unknown");

    // the canary, signed as viewers' URLs are, passes nginx's secure_link: healthy, with a latency
    let h = wait_health(&app, "a", "healthy").await;
    assert!(h["latency_ms"].is_u64(), "{h}");
    assert!(h["checked_at"].is_string() && h["since"].is_string(), "{h}");

    app.open_show("probe-show", 1, "newest_wins").await;
    let (_, token) = app.ticket("probe-show").await;
    let admitted: Value = app
        .admit(&token, "device-probe-01")
        .await
        .json()
        .await
        .unwrap();
    let session = admitted["session_id"].as_str().unwrap().to_owned();
    assert_eq!(admitted["cdn_order"], json!(["a", "origin"]));

    // the edge dies: after two failed probes A is unhealthy and leaves the steering order
    drop(nginx);
    let h = wait_health(&app, "a", "unhealthy").await;
    assert!(
        h["last_error"]
            .as_str()
            .is_some_and(|e| !e.contains("127.0.0.1") && !e.contains(',')),
        "the error names no signed URL: {h}"
    );
    assert_eq!(
        steering(&app, &session).await["PATHWAY-PRIORITY"],
        json!(["origin"])
    );
    let hb: Value = app.heartbeat(&session).await.json().await.unwrap();
    assert_eq!(hb["cdn_order"], json!(["origin"]));
    // a new playlist still lists A, last, for players that can only fail over by themselves
    let (_, master) = get_text(&app, &app.url(&format!("/hls/{session}/master.m3u8"))).await;
    assert!(master.contains("PATHWAY-ID=\"origin\"\n"), "{master}");
    assert!(
        master.find("PATHWAY-ID=\"origin\"") < master.find("PATHWAY-ID=\"a\""),
        "{master}"
    );
    let metrics = get_text(&app, &app.url("/metrics")).await.1;
    assert!(
        metrics.contains("usher_cdn_healthy{cdn=\"a\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("usher_cdn_probes_total{cdn=\"a\",outcome=\"failed\"}"),
        "{metrics}"
    );

    // the admin points A at a new edge: the write keeps the probe's verdict until three probes pass
    let nginx = start_nginx().await;
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(spec(nginx.port)),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let view: Value = res.json().await.unwrap();
    assert_eq!(view["health"]["state"], "unhealthy", "{view}");
    wait_health(&app, "a", "healthy").await;
    assert_eq!(
        steering(&app, &session).await["PATHWAY-PRIORITY"],
        json!(["a", "origin"])
    );
}

/// A local server that accepts connections and counts them (it answers nothing).
async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_reach_no_private_address_unless_allowed() {
    let app = crate::support::spawn_app_with(|c| {
        c.cdn_probe.interval_ms = 200;
        c.cdn_probe.timeout_ms = 1000;
        c.cdn_probe.fail_after = 1;
    })
    .await;
    let (port, accepted) = counting_listener().await;
    for (id, host) in [("inside", "127.0.0.1"), ("named", "localhost")] {
        let res = admin(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/cdns/{id}"),
            Some(
                json!({"name": id, "base_url": format!("http://{host}:{port}"),
                        "signing": nginx_signing(), "canary": "demo/master.m3u8"}),
            ),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let h = wait_health(&app, "inside", "unhealthy").await;
    assert!(
        h["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a public address")),
        "{h}"
    );
    let h = wait_health(&app, "named", "unhealthy").await;
    assert!(
        h["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("resolves to no public address")),
        "{h}"
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a probe connected to a loopback address"
    );
    // a canary is a path under the base URL, never a URL of its own
    for canary in [
        "http://169.254.169.254/latest/meta-data/",
        "../../etc/passwd",
        "/demo/master.m3u8",
    ] {
        let res = patch(&app, "/api/v1/cdns/inside", json!({ "canary": canary })).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_reads_a_bounded_part_of_an_endless_answer() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // an edge that answers 200 and then sends zeros for as long as the reader reads
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let record = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: 1073741824\r\n\r\n";
                let mut n = 0u64;
                if socket.write_all(head.as_bytes()).await.is_ok() {
                    let zeros = vec![0u8; 64 * 1024];
                    while n < 1 << 30 && socket.write_all(&zeros).await.is_ok() {
                        n += zeros.len() as u64;
                    }
                }
                record.lock().unwrap().push(n);
            });
        }
    });
    let app = crate::support::spawn_app_with(|c| {
        c.cdn_probe.interval_ms = 300;
        c.cdn_probe.timeout_ms = 2000;
        c.cdn_probe.allow_private_targets = true;
    })
    .await;
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/endless",
        Some(
            json!({"name": "endless", "base_url": format!("http://127.0.0.1:{port}"),
                    "signing": nginx_signing(), "canary": "demo/seg.ts"}),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    // the first MiB shows the edge delivers: healthy, without reading a gigabyte until the timeout
    wait_health(&app, "endless", "healthy").await;
    let most = usher_testkit::wait_until(Duration::from_secs(10), "a finished probe", || async {
        sent.lock().unwrap().iter().max().copied()
    })
    .await
    .unwrap();
    println!("the probe let the edge send {} KiB", most / 1024);
    // the cap and what the sockets' buffers held when the probe closed
    assert!(most < 16 << 20, "the edge sent {most} bytes to one probe");
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_pull_needs_the_cdns_own_secret() {
    let app = spawn_app().await;
    let secret_a = "pull-secret-of-cdn-a-0123456789";
    let secret_b = "pull-secret-of-cdn-b-9876543210";
    for (id, secret) in [("a", secret_a), ("b", secret_b)] {
        let res = admin(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/cdns/{id}"),
            Some(json!({"name": id, "base_url": format!("https://{id}.cdn.example"), "signing": nginx_signing(),
                        "origin_secret": secret})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let text = res.text().await.unwrap();
        assert!(
            text.contains("\"origin_secret_set\":true") && !text.contains(secret),
            "{text}"
        );
    }
    let pull = |secret: Option<&'static str>, path: &'static str| {
        let mut req = app.client.get(app.url(&format!("/pull/{path}")));
        if let Some(s) = secret {
            req = req.header("x-usher-origin-secret", s);
        }
        req.send()
    };
    let res = pull(None, "demo/master.m3u8").await.unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "origin_pull_refused").await;
    let res = pull(Some("pull-secret-of-cdn-a-0123456788"), "demo/master.m3u8")
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "origin_pull_refused").await;
    let res = pull(Some(secret_a), "demo/master.m3u8").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "public, max-age=1");
    assert!(res.text().await.unwrap().starts_with("#EXTM3U"));
    let res = pull(Some(secret_b), "../Cargo.toml").await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // cut A at the origin: B keeps pulling
    let res = patch(&app, "/api/v1/cdns/a", json!({"origin_secret": null})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["origin_secret_set"],
        false
    );
    let res = pull(Some(secret_a), "demo/master.m3u8").await.unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "origin_pull_refused").await;
    let res = pull(Some(secret_b), "demo/master.m3u8").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // a disabled CDN pulls nothing, whatever secret it holds; enabled again, it pulls again
    let res = patch(&app, "/api/v1/cdns/b", json!({"enabled": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = pull(Some(secret_b), "demo/master.m3u8").await.unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "origin_pull_refused").await;
    let res = patch(&app, "/api/v1/cdns/b", json!({"enabled": true})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = pull(Some(secret_b), "demo/master.m3u8").await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // a PUT without the field keeps B's secret; a short one is refused
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/b",
        Some(
            json!({"name": "b2", "base_url": "https://b.cdn.example", "signing": nginx_signing()}),
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        pull(Some(secret_b), "demo/master.m3u8")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for (cdn, secret) in [("b", "short"), ("origin", secret_a)] {
        let path = format!("/api/v1/cdns/{cdn}");
        let body = json!({ "origin_secret": secret });
        let res = admin(&app, reqwest::Method::PATCH, &path, Some(body)).await;
        assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pools_signer_answers_the_admin_and_usher_sign_url() {
    let nginx = start_nginx().await;
    let app = spawn_app().await;
    let edge = format!("http://127.0.0.1:{}", nginx.port);
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/a",
        Some(json!({"name": "A", "base_url": edge, "signing": nginx_signing()})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 120;
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/cdns/a/sign",
        Some(json!({"path": "demo/360p/index.m3u8", "prefix": "demo/", "expires_at": expires})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let signed: Value = res.json().await.unwrap();
    assert!(!signed.to_string().contains(NGINX_SECRET));
    assert_eq!(signed["cdn"], "a");
    let url = signed["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{edge}/"))
            && url.ends_with(&format!(",{expires}/demo/360p/index.m3u8")),
        "{url}"
    );
    let (status, body) = get_text(&app, url).await;
    assert_eq!(status, StatusCode::OK, "nginx accepts it: {body}");
    // the folder signature covers the folder's other objects
    let seg = url.replace("360p/index.m3u8", "180p/index.m3u8");
    assert_eq!(get_text(&app, &seg).await.0, StatusCode::OK);

    // the CLI asks the server and prints the same
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args([
            "sign-url",
            "--cdn",
            "a",
            "--server",
            &app.base,
            "--path",
            "demo/360p/index.m3u8",
        ])
        .args([
            "--prefix",
            "demo/",
            "--expires",
            &expires.to_string(),
            "--json",
        ])
        .env("USHER_API_KEY", &app.admin_key)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["url"], signed["url"]);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args([
            "sign-url",
            "--cdn",
            "nope",
            "--server",
            &app.base,
            "--path",
            "demo/x.ts",
            "--expires",
            "1",
        ])
        .env("USHER_API_KEY", &app.admin_key)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // refusals
    for (cdn, body, status, code) in [
        (
            "origin",
            json!({"path": "demo/master.m3u8"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "a",
            json!({"path": "../etc/passwd"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "a",
            json!({"path": "demo/x.ts", "prefix": "other/"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "zz",
            json!({"path": "demo/x.ts"}),
            StatusCode::NOT_FOUND,
            "cdn_unknown",
        ),
    ] {
        let path = format!("/api/v1/cdns/{cdn}/sign");
        let res = admin(&app, reqwest::Method::POST, &path, Some(body)).await;
        assert_problem(res, status, code).await;
    }
    let res = app
        .client
        .post(app.url("/api/v1/cdns/a/sign"))
        .bearer_auth(&app.tickets_key)
        .json(&json!({"path": "demo/x.ts"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

/// A scheme that signs with a cookie (Cloud CDN's `Cloud-CDN-Cookie`): the sign answer and the admit's
/// grant both hand the viewer the cookie with its `Set-Cookie` line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_scheme_hands_out_its_cookie() {
    let app = spawn_app().await;
    let signing = json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w==", "delivery": "cookie"});
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/g",
        Some(json!({"name": "G", "base_url": "https://g.cdn.example", "signing": signing})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + 120;
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/cdns/g/sign",
        Some(json!({"path": "demo/master.m3u8", "prefix": "demo/", "expires_at": expires})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let signed: Value = res.json().await.unwrap();
    let cookie = &signed["cookies"][0];
    assert_eq!(cookie["name"], "Cloud-CDN-Cookie", "{signed}");
    let value = cookie["value"].as_str().unwrap();
    assert!(value.contains("KeyName=my-key"), "{signed}");
    assert!(
        cookie["set_cookie"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Cloud-CDN-Cookie={value}")),
        "{signed}"
    );

    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-cookie").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let admitted: Value = res.json().await.unwrap();
    let grants = admitted["grants"].as_array().unwrap();
    let g = grants
        .iter()
        .find(|g| g["cdn"] == "g")
        .expect("a grant of g");
    assert_eq!(g["cookies"][0]["name"], "Cloud-CDN-Cookie", "{g}");
    assert!(
        g["cookies"][0]["set_cookie"]
            .as_str()
            .unwrap()
            .starts_with("Cloud-CDN-Cookie="),
        "{g}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shows_cdn_set_limits_its_delivery() {
    let app = spawn_app().await;
    for id in ["a", "b"] {
        let res = admin(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/cdns/{id}"),
            Some(json!({"name": id, "base_url": format!("https://{id}.cdn.example"), "signing": nginx_signing(), "priority": 10})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let show = |cdns: Value| {
        json!({"title": "Set", "starts_at": fmt(now - time::Duration::hours(1)),
               "ends_at": fmt(now + time::Duration::hours(1)), "stream_path": "demo", "cdns": cdns})
    };
    let res = app
        .put_show("set-show", show(json!(["b", "origin", "b"])))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["cdns"],
        json!(["b", "origin"])
    );
    let (_, token) = app.ticket("set-show").await;
    let admitted: Value = app
        .admit(&token, "device-set-0001")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        admitted["cdn_order"],
        json!(["b", "origin"]),
        "A is not in the show's set"
    );
    let session = admitted["session_id"].as_str().unwrap();
    let (_, master) = get_text(&app, &app.url(&format!("/hls/{session}/master.m3u8"))).await;
    assert!(!master.contains("PATHWAY-ID=\"a\""), "{master}");

    // when the whole set is disabled the show falls back to the pool rather than to nothing
    let res = patch(&app, "/api/v1/cdns/b", json!({"enabled": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = patch(&app, "/api/v1/cdns/origin", json!({"enabled": false})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let hb: Value = app.heartbeat(session).await.json().await.unwrap();
    assert_eq!(hb["cdn_order"], json!(["a"]));

    let res = app.put_show("set-show", show(json!(["nope"]))).await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app.put_show("set-show", show(json!(["Not An Id"]))).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_signs_through_the_pools_signer_for_a_playing_session() {
    let app = spawn_app().await;
    app.open_show("gig", 1, "newest_wins").await;
    let (_, token) = app.ticket("gig").await;
    let res = app.admit(&token, "device-sign1").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let session = res.json::<Value>().await.unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/cdns/origin/sign",
        Some(json!({"path": "demo/360p/index.m3u8", "session_id": session})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let signed: Value = res.json().await.unwrap();
    let url = signed["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("http://{}/o/", app.addr))
            && url.ends_with("/demo/360p/index.m3u8"),
        "{signed}"
    );
    // the grant covers the folder and works while the session plays
    let sibling = url.replace("index.m3u8", "seg_001.ts");
    for u in [url.to_owned(), sibling] {
        let res = app.client.get(&u).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{u}");
    }
    // the origin's grants name a session
    let res = admin(
        &app,
        reqwest::Method::POST,
        "/api/v1/cdns/origin/sign",
        Some(json!({"path": "demo/360p/index.m3u8"})),
    )
    .await;
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    app.shutdown().await;
}

/// The URL query parameter `name` of `url`.
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The policy JSON of a CloudFront custom-policy URL (CloudFront's base64: `-`→`+`, `_`→`=`, `~`→`/`).
fn cloudfront_policy(url: &str) -> String {
    use base64::Engine as _;
    let b64: String = query_param(url, "Policy")
        .unwrap_or_else(|| panic!("a custom policy: {url}"))
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

/// Admits a viewer (from 127.0.0.1) with Akamai, CloudFront and Usher's origin in the pool under the given
/// prefix length for IPv4; returns the grants by CDN id.
async fn grants_at_prefix(bits: u8) -> std::collections::BTreeMap<String, Value> {
    let app = crate::support::spawn_app_with(move |c| c.http.grant_address_prefix_v4 = bits).await;
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../usher-cdn/testdata/aws-sdk-js-v3-test-key.pem"),
    )
    .unwrap();
    for (id, signing) in [
        (
            "akamai",
            json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899"}),
        ),
        (
            "cloudfront",
            json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem}),
        ),
    ] {
        let res = admin(
            &app,
            reqwest::Method::PUT,
            &format!("/api/v1/cdns/{id}"),
            Some(json!({"name": id, "base_url": format!("https://{id}.cdn.example"), "signing": signing})),
        )
        .await;
        assert_eq!(res.status(), StatusCode::CREATED, "{id}");
    }
    app.open_show("bound", 1, "newest_wins").await;
    let (_, token) = app.ticket("bound").await;
    let res = app.admit(&token, "device-bound-1").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    app.shutdown().await;
    body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["cdn"].as_str().unwrap().to_owned(), g.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdn_grants_bind_the_viewers_network_where_the_scheme_can_say_it() {
    // a /24: CloudFront's policy names the viewer's /24; Akamai's `ip=` is exact, so it binds nothing
    let g = grants_at_prefix(24).await;
    let akamai = g["akamai"]["url"].as_str().unwrap();
    let token = query_param(akamai, "__token__").expect("an Akamai token");
    assert!(!token.contains("ip="), "{token}");
    let policy = cloudfront_policy(g["cloudfront"]["url"].as_str().unwrap());
    assert!(
        policy.contains(r#""AWS:SourceIp":"127.0.0.0/24""#),
        "{policy}"
    );
    // a /32: both bind the exact address
    let g = grants_at_prefix(32).await;
    let token = query_param(g["akamai"]["url"].as_str().unwrap(), "__token__").unwrap();
    assert!(token.starts_with("ip=127.0.0.1~"), "{token}");
    let policy = cloudfront_policy(g["cloudfront"]["url"].as_str().unwrap());
    assert!(
        policy.contains(r#""AWS:SourceIp":"127.0.0.1/32""#),
        "{policy}"
    );
    // off: neither
    let g = grants_at_prefix(0).await;
    let token = query_param(g["akamai"]["url"].as_str().unwrap(), "__token__").unwrap();
    assert!(!token.contains("ip="), "{token}");
    let url = g["cloudfront"]["url"].as_str().unwrap();
    assert!(
        query_param(url, "Policy").is_none_or(|_| !cloudfront_policy(url).contains("IpAddress")),
        "{url}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_nginx_edge_checking_remote_addr_serves_the_viewers_address_only() {
    let nginx = start_nginx().await;
    let app = spawn_app().await;
    // under /ip/ the edge's hash covers `$remote_addr`: the CDN's configuration demands the address
    let edge = format!("http://127.0.0.1:{}/ip", nginx.port);
    let signing = json!({
        "scheme": "nginx", "secret": NGINX_SECRET, "delivery": "path", "prefix_variable": "prefix",
        "expression": "$secure_link_expires$prefix$remote_addr $secret",
    });
    let res = admin(
        &app,
        reqwest::Method::PUT,
        "/api/v1/cdns/ip",
        Some(json!({"name": "nginx, address-bound", "base_url": edge, "signing": signing, "priority": 10})),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    app.open_show("ip-show", 1, "newest_wins").await;
    let (_, token) = app.ticket("ip-show").await;
    let res = app.admit(&token, "device-ip-0001").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["grants"][0]["cdn"], "ip", "{body}");
    let master = body["grants"][0]["url"].as_str().unwrap().to_owned();
    // the viewer's address (127.0.0.1, as Usher saw it) plays; another one does not
    let (status, text) = get_text(&app, &master).await;
    assert_eq!(status, StatusCode::OK, "{master}");
    assert!(text.starts_with("#EXTM3U"));
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let res = elsewhere.get(&master).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "{master}");
    app.shutdown().await;
}
