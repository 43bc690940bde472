//! On-demand uploads (tus 1.0) and their packaging jobs, with real ffmpeg and ffprobe.
//!
//! - On the real binary: a generated 2-minute 1080p MP4 (testsrc2 + a tone) is uploaded through tus, the
//!   first `PATCH` broken off mid-body on the socket, `HEAD` says where to resume, the rest follows; the
//!   job runs to `done`, the ladder (1080p/720p/480p/360p, aligned 2-second segments) is on disk as ffprobe
//!   reads it, the show streams from it, and a ticket's session is served its master playlist and
//!   segments. A short upload to an `aes-128` show gets an encrypted ladder whose key a live seat fetches.
//! - A `kill -9` while a job packages: the next start requeues it and it finishes; the second upload, queued
//!   meanwhile (one job at a time), follows.
//! - In process (every answer checked against the API document): wrong offsets, oversize, bad types,
//!   bad versions, bad or missing keys, a second `PATCH` while one writes, termination, expiry, uploads
//!   switched off; and garbage, truncated, empty and too-large-picture files ending as failed jobs with a clear message,
//!   nothing left in the media folder and the show unchanged.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use usher_testkit::wait_until;

use crate::support::{assert_problem, spawn_app, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_usher");

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `Upload-Metadata` naming `show` and `filename`.
fn meta(show: &str, filename: &str) -> String {
    format!("show_id {},filename {}", b64(show), b64(filename))
}

/// Generates a test video with ffmpeg: `seconds` of testsrc2 at `size` with a 440 Hz tone, H.264 + AAC.
fn generate(path: &Path, size: &str, seconds: u32) {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={size}:rate=25"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
        ])
        .arg(seconds.to_string())
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg must be installed for this test (apt-get install -y ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ffprobe says of a file or playlist: (width, height, duration in seconds, has audio).
fn probe(path: &Path) -> (u32, u32, f64, bool) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = v["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream");
    assert_eq!(video["codec_name"], "h264", "{}", path.display());
    let audio = streams.iter().find(|s| s["codec_type"] == "audio");
    if let Some(a) = audio {
        assert_eq!(a["codec_name"], "aac", "{}", path.display());
    }
    (
        video["width"].as_u64().unwrap() as u32,
        video["height"].as_u64().unwrap() as u32,
        v["format"]["duration"].as_str().unwrap().parse().unwrap(),
        audio.is_some(),
    )
}

/// A media playlist's segment durations.
fn durations(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

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

/// A tus `PATCH` of `file[from..to]` at offset `from`, written on a raw socket so it can be broken off:
/// with `abort_after`, only that many bytes of the body are sent before the connection is closed. Returns
/// the answer's status line (`None` when there was no answer) and the seconds the body took.
async fn raw_patch(
    base: &str,
    path: &str,
    key: &str,
    file: &Path,
    from: u64,
    to: u64,
    abort_after: Option<u64>,
) -> (Option<String>, f64) {
    let addr = base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nTus-Resumable: 1.0.0\r\n\
Upload-Offset: {from}\r\nContent-Type: application/offset+octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        to - from
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut f = tokio::fs::File::open(file).await.unwrap();
    tokio::io::AsyncSeekExt::seek(&mut f, std::io::SeekFrom::Start(from))
        .await
        .unwrap();
    let send = abort_after.unwrap_or(to - from).min(to - from);
    let mut left = send;
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    while left > 0 {
        let n = f
            .read(&mut buf[..left.min(1 << 20) as usize])
            .await
            .unwrap();
        assert!(n > 0, "the file ended early");
        sock.write_all(&buf[..n]).await.unwrap();
        left -= n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    if abort_after.is_some() {
        // the client goes away mid-body
        sock.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), sock.read_to_end(&mut answer)).await;
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty());
    (status, secs)
}

async fn upload_state(client: &Client, base: &str, location: &str, key: &str) -> Value {
    let res = client
        .get(format!("{base}{location}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Waits for the upload's job to end (`done` or `failed`), noting the states and percents seen.
async fn job_end(
    client: &Client,
    base: &str,
    location: &str,
    key: &str,
    limit: Duration,
) -> (Value, Vec<(String, u64)>) {
    let mut seen: Vec<(String, u64)> = Vec::new();
    let started = Instant::now();
    loop {
        let v = upload_state(client, base, location, key).await;
        let step = (
            v["state"].as_str().unwrap().to_owned(),
            v["percent"].as_u64().unwrap(),
        );
        if seen.last() != Some(&step) {
            seen.push(step);
        }
        if v["state"] == "done" || v["state"] == "failed" {
            return (v, seen);
        }
        assert!(
            started.elapsed() < limit,
            "the job did not end in {limit:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn create(client: &Client, base: &str, key: &str, length: u64, metadata: &str) -> String {
    let res = client
        .post(format!("{base}/api/v1/uploads"))
        .bearer_auth(key)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("upload-metadata", metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::CREATED,
        "{}",
        res.text().await.unwrap()
    );
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert_eq!(res.headers()["upload-offset"], "0");
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn show_spec(title: &str, stream_path: &str, encryption: &str) -> Value {
    let now = time::OffsetDateTime::now_utc();
    json!({
        "title": title,
        "kind": "vod",
        "stream_path": stream_path,
        "encryption": encryption,
        "starts_at": crate::support::rfc3339(now - time::Duration::hours(1)),
        "ends_at": crate::support::rfc3339(now + time::Duration::hours(3)),
    })
}

/// A ticket's admit: (session id, secret, master playlist URL).
async fn admit(client: &Client, base: &str, key: &str, show: &str) -> (String, String, String) {
    let ticket: Value = client
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(key)
        .json(&json!({"show_id": show}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = client
        .post(format!("{base}/api/v1/playback"))
        .header("x-usher-device", format!("device-{show}"))
        .json(&json!({"token": ticket["token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let v: Value = res.json().await.unwrap();
    (
        v["session_id"].as_str().unwrap().to_owned(),
        v["session_secret"].as_str().unwrap().to_owned(),
        absolute(base, v["playlist_url"].as_str().unwrap()),
    )
}

/// `url` made absolute against `base` (the admit answer's `playlist_url` is a path).
fn absolute(base: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url.to_owned()
    }
}

async fn text(client: &Client, url: &str) -> String {
    let res = client.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.text().await.unwrap()
}

/// `dir/usher.toml` for `usher serve` on `127.0.0.1:0` with uploads on (x264 `ultrafast`), data in
/// `dir/data`, media in `media`.
fn write_config(dir: &Path, media: &Path) -> std::path::PathBuf {
    let config = dir.join("usher.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
media_dir = "{media}"

[secrets]
token_key = "process-test-token-key-0123456789abcdef01"
grant_key = "process-test-grant-key-0123456789abcdef01"

[log]
format = "json"
level = "warn,usher=info"

[uploads]
enabled = true
x264_preset = "ultrafast"
"#,
            data = dir.join("data").display(),
            media = media.display(),
        ),
    )
    .unwrap();
    config
}

/// The whole path on the real binary with the issue's file: a 2-minute 1080p MP4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_1080p_upload_is_resumed_packaged_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let source = dir.path().join("concert.mp4");
    let started = Instant::now();
    generate(&source, "1920x1080", 120);
    eprintln!(
        "generated the 2-minute 1080p source in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let small = dir.path().join("short.mov");
    generate(&small, "1280x720", 6);
    let config = write_config(dir.path(), &media);
    let key = crate::support::process::api_key(&config, "admin");
    let log = dir.path().join("usher.log");
    let usher = serve(&config, &log).await;
    let base = usher.base.clone();
    let client = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let res = client
        .put(format!("{base}/api/v1/shows/concert"))
        .bearer_auth(&key)
        .json(&show_spec("Concert", "concert-placeholder", "none"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let length = std::fs::metadata(&source).unwrap().len();
    let location = create(
        &client,
        &base,
        &key,
        length,
        &meta("concert", "concert.mp4"),
    )
    .await;
    assert!(location.starts_with("/api/v1/uploads/up_"), "{location}");
    // the first PATCH breaks off after 40 % of the file
    let cut = length * 2 / 5;
    let (answer, _) = raw_patch(&base, &location, &key, &source, 0, length, Some(cut)).await;
    eprintln!("the broken-off PATCH was answered {answer:?}");
    let offset = wait_until(Duration::from_secs(20), "the broken-off bytes kept", || {
        let (client, base, location, key) =
            (client.clone(), base.clone(), location.clone(), key.clone());
        async move {
            let res = client
                .head(format!("{base}{location}"))
                .bearer_auth(&key)
                .send()
                .await
                .ok()?;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                res.headers()["upload-length"].to_str().unwrap(),
                length.to_string()
            );
            let at: u64 = res.headers()["upload-offset"].to_str().ok()?.parse().ok()?;
            (at == cut).then_some(at)
        }
    })
    .await
    .expect("HEAD says the offset the broken-off PATCH reached");
    assert_eq!(
        upload_state(&client, &base, &location, &key).await["state"],
        "uploading"
    );
    // resuming from anywhere else is refused
    let res = client
        .patch(format!("{base}{location}"))
        .bearer_auth(&key)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let (answer, secs) = raw_patch(&base, &location, &key, &source, offset, length, None).await;
    let answer = answer.expect("an answer to the resumed PATCH");
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let mib = (length - offset) as f64 / (1024.0 * 1024.0);
    eprintln!(
        "resumed PATCH: {mib:.1} MiB in {secs:.2} s = {:.0} MiB/s (debug build, loopback, fsync at the end)",
        mib / secs
    );

    let packaging = Instant::now();
    let (job, seen) = job_end(&client, &base, &location, &key, Duration::from_secs(480)).await;
    eprintln!(
        "packaged in {:.1} s; states {seen:?}",
        packaging.elapsed().as_secs_f64()
    );
    assert_eq!(job["state"], "done", "{job}");
    assert!(
        seen.iter()
            .any(|(s, p)| s == "packaging" && *p > 0 && *p < 100),
        "progress was visible while packaging: {seen:?}"
    );
    assert_eq!(job["renditions"], json!(["1080p", "720p", "480p", "360p"]));
    let folder = job["stream_path"].as_str().unwrap().to_owned();
    assert!(folder.starts_with("concert-"), "{folder}");
    let show: Value = client
        .get(format!("{base}/api/v1/shows/concert"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(show["stream_path"], folder.as_str());
    // the ladder on disk, as ffprobe reads it: every rung from the source down, 2-second segments cut at
    // the same instants
    let out = media.join(&folder);
    let mut counts = Vec::new();
    for (name, w, h) in [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
    ] {
        let playlist = out.join(name).join("index.m3u8");
        let (pw, ph, duration, audio) = probe(&playlist);
        assert_eq!((pw, ph), (w, h), "{name}");
        assert!(audio, "{name} has its audio");
        assert!((duration - 120.0).abs() < 1.5, "{name} lasts {duration} s");
        let d = durations(&std::fs::read_to_string(&playlist).unwrap());
        assert!(
            d[..d.len() - 1].iter().all(|s| (*s - 2.0).abs() < 0.05),
            "{name}: {d:?}"
        );
        counts.push(d.len());
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "aligned segments: {counts:?}"
    );
    assert!(
        !std::fs::read_dir(&media).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.')),
        "no hidden staging folder is left"
    );
    // the uploaded bytes are gone once packaged; the record stays
    let upload_id = location.rsplit('/').next().unwrap();
    assert!(
        !dir.path()
            .join("data/uploads")
            .join(upload_id)
            .join("data")
            .exists()
    );
    assert_eq!(
        job["offset"], length,
        "a finished upload says every byte arrived"
    );

    // a ticket plays it: the session's master playlist lists the ladder, and segments are served
    let (_, _, playlist_url) = admit(&client, &base, &key, "concert").await;
    let master = text(&client, &playlist_url).await;
    for res in ["1920x1080", "1280x720", "854x480", "640x360"] {
        assert!(master.contains(res), "{res} in {master}");
    }
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("/360p/"))
        .map(|l| absolute(&base, l))
        .unwrap_or_else(|| panic!("a 360p variant in {master}"));
    let media_playlist = text(&client, &variant).await;
    let seg = media_playlist.lines().find(|l| l.ends_with(".ts")).unwrap();
    let seg_url = format!(
        "{}/{seg}",
        variant
            .split('?')
            .next()
            .unwrap()
            .rsplit_once('/')
            .unwrap()
            .0
    );
    let res = client.get(&seg_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{seg_url}");
    let bytes = res.bytes().await.unwrap();
    let seg_file = dir.path().join("segment.ts");
    std::fs::write(&seg_file, &bytes).unwrap();
    let (w, h, _, _) = probe(&seg_file);
    assert_eq!((w, h), (640, 360));

    // an encrypted show gets an encrypted ladder; a live seat fetches its key
    let res = client
        .put(format!("{base}/api/v1/shows/secret"))
        .bearer_auth(&key)
        .json(&show_spec("Secret", "secret-placeholder", "aes-128"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let length = std::fs::metadata(&small).unwrap().len();
    let location = create(&client, &base, &key, length, &meta("secret", "short.mov")).await;
    let (answer, _) = raw_patch(&base, &location, &key, &small, 0, length, None).await;
    assert!(answer.unwrap().starts_with("HTTP/1.1 204"));
    let (job, _) = job_end(&client, &base, &location, &key, Duration::from_secs(240)).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["renditions"], json!(["720p", "480p", "360p"]));
    let folder = job["stream_path"].as_str().unwrap();
    let playlist = std::fs::read_to_string(media.join(folder).join("720p/index.m3u8")).unwrap();
    assert!(playlist.contains("#EXT-X-KEY:METHOD=AES-128"), "{playlist}");
    let (sid, secret, playlist_url) = admit(&client, &base, &key, "secret").await;
    let master = text(&client, &playlist_url).await;
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("/720p/"))
        .map(|l| absolute(&base, l))
        .unwrap_or_else(|| panic!("a 720p variant in {master}"));
    let media_playlist = text(&client, &variant).await;
    let key_uri = media_playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|l| l.split('"').next())
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let res = client
        .get(&key_uri)
        .header("x-usher-session", &sid)
        .header("x-usher-session-secret", &secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{key_uri}");
    assert_eq!(res.bytes().await.unwrap().len(), 16);
    let res = client.get(&key_uri).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no key without a seat");
    drop(usher);
}

fn hidden_in(media: &Path) -> Vec<String> {
    std::fs::read_dir(media)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A crash during packaging: at the next start the job is queued again from its upload and finishes, the
/// half-built folder is gone; meanwhile a second complete upload waits its turn (`uploads.concurrency` 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_interrupted_by_a_crash_is_requeued_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let long = dir.path().join("long.mp4");
    generate(&long, "1920x1080", 30);
    let short = dir.path().join("short.mkv");
    generate(&short, "640x360", 4);
    let config = write_config(dir.path(), &media);
    let key = crate::support::process::api_key(&config, "admin");
    let log = dir.path().join("usher.log");
    let mut usher = serve(&config, &log).await;
    let client = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut locations = Vec::new();
    for (show, file, name) in [
        ("first", &long, "long.mp4"),
        ("second", &short, "short.mkv"),
    ] {
        let res = client
            .put(format!("{}/api/v1/shows/{show}", usher.base))
            .bearer_auth(&key)
            .json(&show_spec(show, &format!("{show}-placeholder"), "none"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let length = std::fs::metadata(file).unwrap().len();
        let location = create(&client, &usher.base, &key, length, &meta(show, name)).await;
        let (answer, _) = raw_patch(&usher.base, &location, &key, file, 0, length, None).await;
        assert!(answer.unwrap().starts_with("HTTP/1.1 204"));
        locations.push(location);
    }
    // the first packages, the second waits
    let base = usher.base.clone();
    wait_until(Duration::from_secs(120), "the first job under way", || {
        let (client, base, key, first) = (
            client.clone(),
            base.clone(),
            key.clone(),
            locations[0].clone(),
        );
        async move {
            let v = upload_state(&client, &base, &first, &key).await;
            (v["state"] == "packaging" && v["percent"].as_u64() >= Some(3)).then_some(())
        }
    })
    .await
    .unwrap();
    assert_eq!(
        upload_state(&client, &base, &locations[1], &key).await["state"],
        "queued"
    );
    assert_eq!(
        hidden_in(&media).len(),
        1,
        "the job builds in a hidden folder"
    );

    // kill -9, then start again
    usher.child.kill().unwrap();
    usher.child.wait().unwrap();
    let log2 = dir.path().join("usher2.log");
    let usher = serve(&config, &log2).await;
    for location in &locations {
        let (job, _) = job_end(
            &client,
            &usher.base,
            location,
            &key,
            Duration::from_secs(300),
        )
        .await;
        assert_eq!(job["state"], "done", "{job}");
    }
    assert!(
        std::fs::read_to_string(&log2)
            .unwrap()
            .contains("queued again"),
        "the restart says it requeued the job"
    );
    assert_eq!(
        hidden_in(&media),
        Vec::<String>::new(),
        "no half-built folder is left"
    );
    let first: Value = upload_state(&client, &usher.base, &locations[0], &key).await;
    let (w, h, duration, _) = probe(
        &media
            .join(first["stream_path"].as_str().unwrap())
            .join("1080p/index.m3u8"),
    );
    assert_eq!((w, h), (1920, 1080));
    assert!((duration - 30.0).abs() < 1.0, "{duration}");
}

/// An in-process app with uploads on, its media and uploads folders under `dir`.
async fn uploads_app(dir: &Path) -> crate::support::TestApp {
    let media = dir.join("media");
    let uploads = dir.join("uploads");
    std::fs::create_dir_all(&media).unwrap();
    spawn_app_with(move |c| {
        c.media_dir = media;
        c.uploads.enabled = true;
        c.uploads.dir = Some(uploads);
        c.uploads.max_bytes = 50 * 1024 * 1024;
        c.uploads.x264_preset = "ultrafast".into();
    })
    .await
}

fn patch(
    app: &crate::support::TestApp,
    location: &str,
    offset: u64,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    app.client
        .patch(app.url(location))
        .bearer_auth(&app.admin_key)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(body)
}

/// Uploads `bytes` for `show` in one PATCH and waits for its job to end.
async fn upload_whole(
    app: &crate::support::TestApp,
    show: &str,
    name: &str,
    bytes: Vec<u8>,
) -> Value {
    let location = create(
        &app.client,
        &app.base,
        &app.admin_key,
        bytes.len() as u64,
        &meta(show, name),
    )
    .await;
    if !bytes.is_empty() {
        let res = patch(app, &location, 0, bytes).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
    job_end(
        &app.client,
        &app.base,
        &location,
        &app.admin_key,
        Duration::from_secs(120),
    )
    .await
    .0
}

fn media_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("media"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Bad files end as failed jobs that say why; nothing is left half-made and the show keeps its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_fail_with_a_clear_message_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = uploads_app(dir.path()).await;
    let res = app.put_show("gig", show_spec("Gig", "gig", "none")).await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let job = upload_whole(&app, "gig", "holiday.mp4", garbage).await;
    assert_eq!(job["state"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("not a video file"), "{error}");

    let empty = upload_whole(&app, "gig", "empty.mp4", Vec::new()).await;
    assert_eq!(empty["state"], "failed");
    assert_eq!(empty["error"], "the file is empty");

    // an MP4 cut in the middle (its index at the end is missing), and an MKV cut in the middle (readable
    // up to the cut)
    let mp4 = dir.path().join("whole.mp4");
    generate(&mp4, "640x360", 8);
    let bytes = std::fs::read(&mp4).unwrap();
    let cut = upload_whole(&app, "gig", "cut.mp4", bytes[..bytes.len() / 2].to_vec()).await;
    assert_eq!(cut["state"], "failed");
    let error = cut["error"].as_str().unwrap();
    assert!(
        error.contains("moov atom not found") && error.contains("truncated"),
        "{error}"
    );
    let mkv = dir.path().join("whole.mkv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&mp4)
        .args(["-c", "copy"])
        .arg(&mkv)
        .output()
        .unwrap();
    assert!(out.status.success());
    let bytes = std::fs::read(&mkv).unwrap();
    let cut = upload_whole(
        &app,
        "gig",
        "cut.mkv",
        bytes[..bytes.len() * 2 / 5].to_vec(),
    )
    .await;
    assert_eq!(cut["state"], "failed", "{cut}");
    let error = cut["error"].as_str().unwrap();
    assert!(
        error.contains("truncated") || error.contains("damaged"),
        "{error}"
    );

    // a picture wider than 8192 (a real file: x264 makes it in a blink)
    let huge = dir.path().join("huge.mkv");
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=size=8200x64:rate=5",
        ])
        .args([
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&huge)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = upload_whole(&app, "gig", "huge.mkv", std::fs::read(&huge).unwrap()).await;
    assert_eq!(job["state"], "failed");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("too large: 8200×64"), "{error}");

    // nothing in the media folder, the show as it was, the failed uploads' bytes gone
    assert_eq!(media_entries(dir.path()), Vec::<String>::new());
    let show: Value = app
        .get_with("/api/v1/shows/gig", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(show["stream_path"], "gig");
    let list: Value = app
        .get_with("/api/v1/uploads", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let list = list["uploads"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|u| u["state"] == "failed"));
    for u in list {
        assert!(
            !dir.path()
                .join("uploads")
                .join(u["id"].as_str().unwrap())
                .join("data")
                .exists()
        );
    }
    let audit: Value = app
        .get_with("/api/v1/audit?action=upload.failed", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(5),
        "{audit}"
    );
    app.shutdown().await;
}

/// Every refusal of the tus routes, each with its status and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = uploads_app(dir.path()).await;
    let res = app.put_show("gig", show_spec("Gig", "gig", "none")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let post = |headers: Vec<(&'static str, String)>, key: Option<&str>| {
        let mut req = app.client.post(app.url("/api/v1/uploads"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let good = || {
        vec![
            ("tus-resumable", "1.0.0".to_owned()),
            ("upload-length", "100".to_owned()),
            ("upload-metadata", meta("gig", "a.mp4")),
        ]
    };

    // discovery
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    assert_eq!(res.headers()["tus-extension"], "creation,termination");
    assert_eq!(
        res.headers()["tus-max-size"],
        (50 * 1024 * 1024).to_string()
    );

    // who may upload
    assert_problem(
        post(good(), None).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_problem(
        post(good(), Some("nope")).await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_problem(
        post(good(), Some(&app.tickets_key)).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // every route: no key, a key without the admin scope, a path that is not UTF-8
    let some = "/api/v1/uploads/up_0123456789abcdef0123456789abcdef";
    for (method, path) in [
        (reqwest::Method::GET, "/api/v1/uploads"),
        (reqwest::Method::GET, some),
        (reqwest::Method::PATCH, some),
        (reqwest::Method::DELETE, some),
    ] {
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let res = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&app.tickets_key)
            .send()
            .await
            .unwrap();
        assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        if path == some {
            let res = app
                .client
                .request(method.clone(), app.url("/api/v1/uploads/%ff%fe"))
                .bearer_auth(&app.admin_key)
                .send()
                .await
                .unwrap();
            assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
    let res = app.client.head(app.url(some)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app
        .client
        .head(app.url(some))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // what may be created
    let mut h = good();
    h[1].1 = (50 * 1024 * 1024 + 1).to_string();
    assert_problem(
        post(h, Some(&app.admin_key)).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let mut h = good();
    h[2].1 = meta("gig", "notes.txt");
    let p = assert_problem(
        post(h, Some(&app.admin_key)).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap().contains("MP4, MOV or MKV"),
        "{p}"
    );
    let mut h = good();
    h.push(("upload-metadata", String::new()));
    h[2].1 = format!("{},filetype {}", meta("gig", "a.mp4"), b64("image/png"));
    assert_problem(
        post(h, Some(&app.admin_key)).await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let mut h = good();
    h[0].1 = "0.2.2".into();
    let res = post(h, Some(&app.admin_key)).await.unwrap();
    assert_eq!(res.headers()["tus-version"], "1.0.0");
    assert_problem(
        res,
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
    )
    .await;
    let mut h = good();
    h.remove(1);
    assert_problem(
        post(h, Some(&app.admin_key)).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let mut h = good();
    h[2].1 = meta("nosuchshow", "a.mp4");
    assert_problem(
        post(h, Some(&app.admin_key)).await.unwrap(),
        StatusCode::NOT_FOUND,
        "show_unknown",
    )
    .await;

    // writing
    let location = create(
        &app.client,
        &app.base,
        &app.admin_key,
        100,
        &meta("gig", "a.mp4"),
    )
    .await;
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&app.admin_key)
        .header("upload-offset", "0")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = patch(&app, &location, 0, vec![1; 30]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(res.headers()["upload-offset"], "30");
    let p = assert_problem(
        patch(&app, &location, 10, vec![1; 10])
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "upload_offset_mismatch",
    )
    .await;
    assert_eq!(p["offset"], 30);
    assert_problem(
        patch(&app, &location, 31, vec![1; 10])
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "upload_offset_mismatch",
    )
    .await;
    // past Upload-Length: refused whole, the offset stays
    assert_problem(
        patch(&app, &location, 30, vec![1; 71])
            .send()
            .await
            .unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&app.admin_key)
        .header("upload-offset", "x")
        .header("content-type", "application/offset+octet-stream")
        .body("z")
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&app.admin_key)
        .header("tus-resumable", "2.0.0")
        .header("upload-offset", "30")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![1; 10])
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
    )
    .await;
    let res = app
        .client
        .patch(app.url(&location))
        .bearer_auth(&app.tickets_key)
        .header("upload-offset", "30")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![1; 10])
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .client
        .head(app.url(&location))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["upload-offset"], "30");
    assert_eq!(res.headers()["upload-length"], "100");
    assert_eq!(res.headers()["cache-control"], "no-store");

    // a second PATCH while one is writing is refused, not interleaved (the slow one goes straight to the
    // app: the checking proxy reads whole bodies before it forwards them). The probe asks at an offset
    // the upload is not at, so it writes nothing: until the slow PATCH holds the upload it answers 409.
    // A probe holds the upload too while it checks, so on a loaded machine the slow PATCH can arrive in
    // that instant and be the one refused (423 at once): then a new slow PATCH is sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut slow, busy) = 'race: loop {
        assert!(
            Instant::now() < deadline,
            "the slow PATCH never held the upload"
        );
        let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        slow.write_all(format!(
            "PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nUpload-Offset: 30\r\n\
Content-Type: application/offset+octet-stream\r\nContent-Length: 70\r\n\r\n",
            app.admin_key
        ).as_bytes()).await.unwrap();
        slow.write_all(&[2; 20]).await.unwrap();
        while Instant::now() < deadline {
            let res = patch(&app, &location, 99, vec![3; 1]).send().await.unwrap();
            if res.status() == StatusCode::LOCKED {
                break 'race (slow, res);
            }
            assert_problem(res, StatusCode::CONFLICT, "upload_offset_mismatch").await;
            let mut first = [0u8; 1];
            if let Ok(read) =
                tokio::time::timeout(Duration::from_millis(20), slow.read(&mut first)).await
            {
                // answered already: it met a probe holding the upload
                assert_eq!(
                    read.unwrap(),
                    1,
                    "the slow PATCH's connection closed unanswered"
                );
                let mut rest = [0u8; 11];
                slow.read_exact(&mut rest).await.unwrap();
                assert_eq!([&first[..], &rest[..]].concat(), b"HTTP/1.1 423");
                continue 'race;
            }
        }
    };
    assert_problem(busy, StatusCode::LOCKED, "upload_busy").await;
    assert_problem(
        app.delete_with(&location, &app.admin_key).await,
        StatusCode::LOCKED,
        "upload_busy",
    )
    .await;
    slow.write_all(&[2; 50]).await.unwrap();
    let mut answer = vec![0u8; 12];
    slow.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 204");
    let up: Value = app
        .get_with(&location, &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(up["offset"], 100);
    assert_ne!(up["state"], "uploading");
    let data = std::fs::read(
        dir.path()
            .join("uploads")
            .join(up["id"].as_str().unwrap())
            .join("data"),
    );
    if let Ok(data) = data {
        assert!(data[..30].iter().all(|b| *b == 1) && data[30..].iter().all(|b| *b == 2));
    }
    // complete: no more bytes (once its job, which finds no video in them, is over)
    let (job, _) = job_end(
        &app.client,
        &app.base,
        &location,
        &app.admin_key,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(job["state"], "failed");
    assert_problem(
        patch(&app, &location, 100, vec![1]).send().await.unwrap(),
        StatusCode::CONFLICT,
        "upload_offset_mismatch",
    )
    .await;

    // termination
    let other = create(
        &app.client,
        &app.base,
        &app.admin_key,
        100,
        &meta("gig", "b.mkv"),
    )
    .await;
    let res = app
        .client
        .delete(app.url(&other))
        .bearer_auth(&app.admin_key)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_with(&other, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "upload_unknown",
    )
    .await;
    assert_problem(
        app.delete_with(&other, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "upload_unknown",
    )
    .await;
    assert_problem(
        patch(&app, &other, 0, vec![1]).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "upload_unknown",
    )
    .await;
    let res = app
        .client
        .delete(app.url(&location))
        .bearer_auth(&app.admin_key)
        .header("tus-resumable", "9.9.9")
        .send()
        .await
        .unwrap();
    assert_problem(
        res,
        StatusCode::PRECONDITION_FAILED,
        "tus_version_unsupported",
    )
    .await;
    assert_problem(
        app.get_with("/api/v1/uploads/../../etc", &app.admin_key)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.get_with("/api/v1/uploads/up_x", &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "upload_unknown",
    )
    .await;

    // an abandoned upload expires: its folder goes, and so does a finished record
    let abandoned = create(
        &app.client,
        &app.base,
        &app.admin_key,
        100,
        &meta("gig", "c.mp4"),
    )
    .await;
    let id = abandoned.rsplit('/').next().unwrap();
    let record_path = dir.path().join("uploads").join(id).join("upload.json");
    let mut record: Value = serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["updated_at"] = json!("2020-01-01T00:00:00Z");
    std::fs::write(&record_path, record.to_string()).unwrap();
    usher_server::service::admin::uploads::expire(&app.state).await;
    assert!(!dir.path().join("uploads").join(id).exists());
    assert_problem(
        app.get_with(&abandoned, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "upload_unknown",
    )
    .await;
    let audit: Value = app
        .get_with("/api/v1/audit?action=upload.", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "upload.create",
        "upload.complete",
        "upload.delete",
        "upload.expire",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    app.shutdown().await;
}

/// Without `uploads.enabled` the routes say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_off_unless_enabled() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/uploads"))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "uploads_disabled").await;
    assert_problem(
        app.get_with("/api/v1/uploads", &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "uploads_disabled",
    )
    .await;
    let res = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&app.admin_key)
        .header("upload-length", "10")
        .header("upload-metadata", meta("x", "a.mp4"))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "uploads_disabled").await;
    let loc = "/api/v1/uploads/up_0123456789abcdef0123456789abcdef";
    assert_problem(
        app.get_with(loc, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "uploads_disabled",
    )
    .await;
    assert_problem(
        app.delete_with(loc, &app.admin_key).await,
        StatusCode::NOT_FOUND,
        "uploads_disabled",
    )
    .await;
    let res = app
        .client
        .patch(app.url(loc))
        .bearer_auth(&app.admin_key)
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::NOT_FOUND, "uploads_disabled").await;
    let res = app
        .client
        .head(app.url(loc))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    app.shutdown().await;
}
