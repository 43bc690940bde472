//! Encrypted HLS end to end on the real binaries: `usher serve`, `usher package` (ffmpeg) turning the demo
//! stream into an AES-128 ladder for an `aes-128` show, a viewer's segment decrypted by `openssl
//! aes-128-cbc` with the key its live seat fetched into MPEG-TS that `ffprobe` reads, the superseded
//! viewer's key requests refused while the new seat's succeed, and no content key in clear in the logs
//! (at `debug`), the answers or the data directory. A caching nginx edge (`proxy_cache` over Usher's
//! `/pull/`, `secure_link` for viewers) stands in for a CDN: it keeps serving the superseded viewer
//! segments from its cache, which decrypt only with a key of a live seat.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::{repo_root, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_usher");

/// `usher serve` with its log in a file; killed (by its pid) on drop.
struct Serve {
    child: std::process::Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(config: &Path, log: &Path) -> Serve {
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let listen = wait_until(Duration::from_secs(30), "usher serving", || async {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == "usher serving")
            .and_then(|v| v["listen"].as_str().map(str::to_owned))
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "usher serve did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        )
    });
    Serve {
        child,
        base: format!("http://{listen}"),
    }
}

fn tool(name: &str) {
    let ok = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "{name} must be installed for this test (apt-get install -y ffmpeg openssl)"
    );
}

/// A caching nginx edge in front of Usher's origin pull, killed (SIGTERM to its master) on drop.
struct Edge {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

const EDGE_SECRET: &str = "edge-secure-link-secret-4b1d";
const PULL_SECRET: &str = "edge-origin-pull-secret-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on `port`: links `/<hash>,<expires>/<folder>/<file>` checked by `secure_link` (as Usher signs
/// them), pulled from `usher` (`/pull/…` with the origin-pull secret) and cached for an hour
/// (`X-Cache-Status` says whether an answer came from the cache).
async fn start_edge(port: u16, usher: &str) -> Edge {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let upstream = usher.trim_start_matches("http://");
    let conf = format!(
        r#"{user}
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  proxy_cache_path {d}/cache levels=1:2 keys_zone=edge:1m max_size=64m inactive=1h use_temp_path=off;
  server {{
    listen 127.0.0.1:{port};
    location ~ ^/(?<secure>[\w-]+,\d+)(?<prefix>/[^/]+/)(?<file>.*)$ {{
      secure_link $secure;
      secure_link_md5 "$secure_link_expires$prefix {EDGE_SECRET}";
      if ($secure_link = "") {{ return 403; }}
      if ($secure_link = "0") {{ return 410; }}
      proxy_pass http://{upstream}/pull$prefix$file;
      proxy_set_header X-Usher-Origin-Secret "{PULL_SECRET}";
      proxy_cache edge;
      proxy_cache_key $prefix$file;
      proxy_cache_valid 200 1h;
      add_header X-Cache-Status $upstream_cache_status;
    }}
    location / {{ return 403; }}
  }}
}}
"#,
        user = if root { "user root;" } else { "" },
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let nginx = if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    };
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf_path)
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx must be installed (scripts/test.sh installs Debian's nginx)");
    let edge = Edge { child, dir };
    wait_until(Duration::from_secs(10), "nginx listening", || async {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "nginx did not start: {}",
            std::fs::read_to_string(edge.dir.path().join("error.log")).unwrap_or_default()
        )
    });
    edge
}

/// The playlist's first `EXT-X-KEY` URI and IV, and the segment after it.
fn first_key(playlist: &str) -> (String, String, String) {
    let key = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .expect("a key line");
    let uri = key
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let iv = key
        .split("IV=0x")
        .nth(1)
        .map(|v| v.split(',').next().unwrap().to_owned())
        .expect("an IV");
    let at = playlist.find(key).unwrap();
    let segment = playlist[at..]
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap();
    (uri.to_owned(), iv, segment.to_owned())
}

/// H.264 packets `ffprobe` reads from the MPEG-TS file `path` (0 when it cannot read it).
fn h264_packets(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=codec_name,nb_read_packets",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| l.strip_prefix("h264,"))
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// Every form a key could be written in: its bytes, hex in either case, base64 and base64url.
fn forms(key: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![
        key.to_vec(),
        hex::encode(key).into_bytes(),
        hex::encode_upper(key).into_bytes(),
    ];
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ] {
        out.push(engine.encode(key).trim_end_matches('=').as_bytes().to_vec());
    }
    out
}

fn holds(haystack: &[u8], forms: &[Vec<u8>]) -> bool {
    forms
        .iter()
        .any(|f| haystack.windows(f.len()).any(|w| w == f.as_slice()))
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packaged_show_decrypts_only_with_a_live_seats_key() {
    for t in ["ffmpeg", "ffprobe", "openssl"] {
        tool(t);
    }
    let dir = tempfile::tempdir().unwrap();
    let (data, media) = (dir.path().join("data"), dir.path().join("media"));
    std::fs::create_dir_all(&media).unwrap();
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{}"
media_dir = "{}"

[secrets]
token_key = "encryption-token-key-0123456789abcdef0123"
grant_key = "encryption-grant-key-0123456789abcdef0123"
key_encryption_key = "encryption-kek-0123456789abcdef0123456789"

[log]
format = "json"
level = "debug"
"#,
            data.display(),
            media.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "api-key", "create", "--name", "ops", "--scope", "admin", "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let log = dir.path().join("usher.log");
    let server = serve(&config, &log).await;
    let base = server.base.clone();
    let client = Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut answers: Vec<u8> = Vec::new();

    let now = time::OffsetDateTime::now_utc();
    let fmt = crate::support::rfc3339;
    let res = client
        .put(format!("{base}/api/v1/shows/enc"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "Encrypted", "stream_path": "enc", "encryption": "aes-128",
            "starts_at": fmt(now - time::Duration::hours(1)),
            "ends_at": fmt(now + time::Duration::hours(2)),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    // usher package: the committed demo ladder, a new key every 8 segments
    let packaged = Command::new(BIN)
        .args([
            "package",
            "--server",
            &base,
            "--show",
            "enc",
            "--segments-per-key",
            "8",
        ])
        .arg("--input")
        .arg(repo_root().join("media/demo/master.m3u8"))
        .arg("--media-dir")
        .arg(&media)
        .env("USHER_API_KEY", &admin)
        .output()
        .unwrap();
    assert!(
        packaged.status.success(),
        "usher package: {}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    answers.extend_from_slice(&packaged.stdout);
    answers.extend_from_slice(&packaged.stderr);
    let on_disk = std::fs::read_to_string(media.join("enc/360p/index.m3u8")).unwrap();
    let keys_in_playlist = on_disk.matches("#EXT-X-KEY:").count();
    assert_eq!(
        keys_in_playlist, 4,
        "32 segments, a key every 8:\n{on_disk}"
    );
    assert!(on_disk.contains(&format!("URI=\"{base}/keys/ck_")));

    // the caching edge joins the pool, pulling from Usher with its own secret
    let edge_port = free_port();
    let edge_base = format!("http://127.0.0.1:{edge_port}");
    let res = client
        .put(format!("{base}/api/v1/cdns/edge"))
        .bearer_auth(&admin)
        .json(&json!({
            "name": "caching nginx edge", "base_url": edge_base, "priority": 10,
            "origin_secret": PULL_SECRET,
            "signing": {"scheme": "nginx", "secret": EDGE_SECRET, "delivery": "path",
                "prefix_variable": "prefix", "expression": "$secure_link_expires$prefix $secret"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    let edge = start_edge(edge_port, &base).await;

    let ticket: Value = client
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(&admin)
        .json(&json!({"show_id": "enc"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = ticket["token"].as_str().unwrap().to_owned();
    let admit = |device: &'static str| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let res = client
                .post(format!("{base}/api/v1/playback"))
                .header("x-usher-device", device)
                .json(&json!({"token": token}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            let v: Value = res.json().await.unwrap();
            let grant = |cdn: &str, field: &str| {
                v["grants"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|g| g["cdn"] == cdn)
                    .unwrap()[field]
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            (
                v["session_id"].as_str().unwrap().to_owned(),
                v["session_secret"].as_str().unwrap().to_owned(),
                grant("origin", "token"),
                grant("edge", "url"),
            )
        }
    };
    let fetch_key = |uri: String, seat: Option<(String, String)>| {
        let client = client.clone();
        async move {
            let mut req = client.get(uri);
            if let Some((sid, secret)) = seat {
                req = req
                    .header("x-usher-session", sid)
                    .header("x-usher-session-secret", secret);
            }
            let res = req.send().await.unwrap();
            (res.status(), res.bytes().await.unwrap().to_vec())
        }
    };

    let (a, a_secret, a_grant, a_edge_master) = admit("device-aaaa").await;
    // the playlist through Usher's origin: key URIs at Usher, with the grant for native players
    let playlist = client
        .get(format!("{base}/o/{a_grant}/enc/360p/index.m3u8"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (key_uri, iv, segment) = first_key(&playlist);
    assert!(
        key_uri.starts_with(&format!("{base}/keys/ck_")),
        "{key_uri}"
    );
    assert!(key_uri.contains("?usher_grant="), "{key_uri}");
    let bare_key_uri = key_uri.split('?').next().unwrap().to_owned();
    let seg = client
        .get(format!("{base}/o/{a_grant}/enc/360p/{segment}"))
        .send()
        .await
        .unwrap();
    assert_eq!(seg.status(), StatusCode::OK);
    let encrypted = dir.path().join("segment.ts");
    std::fs::write(&encrypted, seg.bytes().await.unwrap()).unwrap();
    assert_eq!(
        h264_packets(&encrypted),
        0,
        "the segment is not plain MPEG-TS"
    );

    // the live seat's key decrypts it into MPEG-TS
    let (status, key) = fetch_key(bare_key_uri.clone(), Some((a.clone(), a_secret.clone()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(key.len(), 16);
    let decrypted = dir.path().join("decrypted.ts");
    let openssl = Command::new("openssl")
        .args([
            "aes-128-cbc",
            "-d",
            "-K",
            &hex::encode(&key),
            "-iv",
            &iv,
            "-in",
        ])
        .arg(&encrypted)
        .arg("-out")
        .arg(&decrypted)
        .output()
        .unwrap();
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    let packets = h264_packets(&decrypted);
    assert!(
        packets >= 40,
        "2 s at 25 fps decrypts to H.264 packets: {packets}"
    );
    // a native player's key URI (the grant) gets the same key
    let (status, by_grant) = fetch_key(key_uri.clone(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_grant, key);
    // another run's key does not decrypt this segment
    let other_uri = playlist
        .lines()
        .filter(|l| l.starts_with("#EXT-X-KEY:"))
        .nth(1)
        .unwrap()
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split(['?', '"'])
        .next()
        .unwrap()
        .to_owned();
    let (status, other_key) = fetch_key(other_uri, Some((a.clone(), a_secret.clone()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(other_key, key);
    let wrong = dir.path().join("wrong.ts");
    let _ = Command::new("openssl")
        .args([
            "aes-128-cbc",
            "-d",
            "-K",
            &hex::encode(&other_key),
            "-iv",
            &iv,
            "-in",
        ])
        .arg(&encrypted)
        .arg("-out")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(
        h264_packets(&wrong) < packets / 2,
        "a wrong key gives no clean stream"
    );

    // a second device takes the seat: the first one's key requests are refused at once, by secret and by
    // grant, while the new seat's succeed
    // the same segment from the caching edge, under A's edge grant: pulled once, then from the cache
    let a_edge_segment = a_edge_master.replace("master.m3u8", &format!("360p/{segment}"));
    let edge_get = |url: String| {
        let client = client.clone();
        async move {
            let res = client.get(url).send().await.unwrap();
            let cache = res
                .headers()
                .get("x-cache-status")
                .map(|v| v.to_str().unwrap().to_owned());
            (res.status(), cache, res.bytes().await.unwrap().to_vec())
        }
    };
    let (status, cache, from_edge) = edge_get(a_edge_segment.clone()).await;
    assert_eq!((status, cache.as_deref()), (StatusCode::OK, Some("MISS")));
    assert_eq!(from_edge, std::fs::read(&encrypted).unwrap());
    // the edge's copy of the media playlist names Usher's key endpoint, with no credential in it
    let (status, _, edge_playlist) =
        edge_get(a_edge_master.replace("master.m3u8", "360p/index.m3u8")).await;
    assert_eq!(status, StatusCode::OK);
    let edge_playlist = String::from_utf8(edge_playlist).unwrap();
    let (edge_key_uri, _, _) = first_key(&edge_playlist);
    assert_eq!(edge_key_uri, bare_key_uri);

    let (b, b_secret, _, _) = admit("device-bbbb").await;
    // the edge still serves the superseded viewer from its cache (its grant lives on)...
    let (status, cache, cached) = edge_get(a_edge_segment).await;
    assert_eq!((status, cache.as_deref()), (StatusCode::OK, Some("HIT")));
    assert_eq!(cached, from_edge);
    let (status, body) = fetch_key(bare_key_uri.clone(), Some((a.clone(), a_secret.clone()))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "superseded");
    answers.extend_from_slice(&body);
    let (status, body) = fetch_key(key_uri.clone(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["code"],
        "grant_refused"
    );
    let (status, b_key) = fetch_key(bare_key_uri, Some((b, b_secret))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(b_key, key);
    // ...and the edge's cached segment decrypts with the live seat's key
    let edge_file = dir.path().join("edge.ts");
    std::fs::write(&edge_file, &cached).unwrap();
    let edge_clear = dir.path().join("edge-clear.ts");
    let openssl = Command::new("openssl")
        .args([
            "aes-128-cbc",
            "-d",
            "-K",
            &hex::encode(&b_key),
            "-iv",
            &iv,
            "-in",
        ])
        .arg(&edge_file)
        .arg("-out")
        .arg(&edge_clear)
        .output()
        .unwrap();
    assert!(openssl.status.success());
    assert_eq!(h264_packets(&edge_clear), packets);
    answers.extend_from_slice(edge_playlist.as_bytes());
    drop(edge);

    // every other answer this test saw, and the show as the API reads it
    for path in ["/api/v1/shows/enc", "/metrics"] {
        let res = client
            .get(format!("{base}{path}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        answers.extend_from_slice(&res.bytes().await.unwrap());
    }
    answers.extend_from_slice(playlist.as_bytes());
    drop(server);

    // no key in clear: not in the log (debug level), not in any other answer, not in the data directory
    for k in [&key, &other_key] {
        let f = forms(k);
        let logged = std::fs::read(&log).unwrap();
        assert!(logged.len() > 1000, "the log was written");
        assert!(!holds(&logged, &f), "a content key is in the log");
        assert!(!holds(&answers, &f), "a content key is in an answer");
        let mut files = Vec::new();
        files_under(&data, &mut files);
        assert!(!files.is_empty());
        for file in files {
            assert!(
                !holds(&std::fs::read(&file).unwrap(), &f),
                "{} holds a content key in clear",
                file.display()
            );
        }
        // nor in the media folder: the packager's clear key files never go there
        let mut files = Vec::new();
        files_under(&media, &mut files);
        for file in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e != "ts"))
        {
            assert!(
                !holds(&std::fs::read(file).unwrap(), &f),
                "{}",
                file.display()
            );
        }
    }
}
