//! Live ingest end to end on the real binary, with real encoders: ffmpeg (`-re`, a generated test pattern
//! and tone) publishes over RTMP and over SRT to `usher serve`; a ticket's viewer, admitted through the
//! normal playback flow, gets the live playlists and segments through the origin within 15 s of the
//! publish; a wrong key, a show outside its publish window and a second publisher are refused; the encoder
//! stopping for 5 s and coming back keeps the same playlist advancing (the media sequence goes on, the new
//! segments after an `#EXT-X-DISCONTINUITY`) for the same viewer session; once the encoder is gone for
//! longer than the reconnect window the playlists end with `#EXT-X-ENDLIST`. And in process: a stream key
//! is shown once, replaced by a rotation, audited, and never in the status answer.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use usher_testkit::wait_until;

use crate::support::process::{BIN, api_key, serve_config};
use crate::support::{rfc3339, spawn_app};

/// `usher serve` with ingest on, its log in a file; killed on drop.
struct Node {
    child: std::process::Child,
    base: String,
    rtmp: String,
    srt: String,
    log: PathBuf,
    media: PathBuf,
    admin: String,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        "{name} must be installed for this test (apt-get install -y ffmpeg)"
    );
}

/// Starts a node whose ingest listens on free ports, with a small ladder (CI time) of 2-second segments
/// and a 12-second reconnect window.
async fn node() -> Node {
    node_with_margin(60).await
}

/// [`node`] with `ingest.margin_s` set.
async fn node_with_margin(margin_s: u32) -> Node {
    tool("ffmpeg");
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let config = serve_config(
        dir.path(),
        &format!(
            r#"[ingest]
rtmp_listen = "127.0.0.1:0"
srt_listen = "127.0.0.1:0"
lead_s = 600
margin_s = {margin_s}
reconnect_window_s = 12
segment_s = 2
dvr_s = 60
key_rotation_s = 4
preset = "ultrafast"
ladder = [{{height = 360, video_kbps = 500, audio_kbps = 64}}, {{height = 180, video_kbps = 200, audio_kbps = 48}}]

[webhooks]
poll_ms = 200
allow_private_targets = true
"#
        ),
    );
    // the shared test configuration serves the repository's media; this node writes its own
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("media_dir") {
                format!("media_dir = \"{}\"", media.display())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).unwrap();
    let admin = api_key(&config, "admin");
    let log = dir.path().join("usher.log");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let field = |message: &str, key: &str| {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["message"] == message)
            .and_then(|v| v[key].as_str().map(str::to_owned))
    };
    let listen = wait_until(Duration::from_secs(30), "usher serving", || async {
        field("usher serving", "listen")
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "usher serve did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    // the listeners' line may follow the serving line by a moment
    let (rtmp, srt) = wait_until(Duration::from_secs(10), "ingest listening", || async {
        field("ingest listening", "rtmp").zip(field("ingest listening", "srt"))
    })
    .await
    .expect("the ingest listeners are logged");
    assert!(!rtmp.is_empty() && !srt.is_empty(), "{rtmp} {srt}");
    Node {
        child,
        base: format!("http://{listen}"),
        rtmp,
        srt,
        log,
        media,
        admin,
        client: Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl Node {
    /// A live show open from a minute ago for an hour (or starting in `starts_in_min`), with a stream key.
    async fn live_show(&self, id: &str, starts_in_min: i64) -> String {
        let starts = time::OffsetDateTime::now_utc() + time::Duration::minutes(starts_in_min);
        self.live_show_until(id, starts, starts + time::Duration::hours(1), json!({}))
            .await
    }

    /// A live show from `starts` to `ends`, with a stream key.
    async fn live_show_until(
        &self,
        id: &str,
        starts: time::OffsetDateTime,
        ends: time::OffsetDateTime,
        extra: Value,
    ) -> String {
        let mut body = json!({
            "title": format!("Live {id}"), "kind": "live", "stream_path": format!("live/{id}"),
            "starts_at": rfc3339(starts), "ends_at": rfc3339(ends),
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = self
            .client
            .put(format!("{}/api/v1/shows/{id}", self.base))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let res = self
            .client
            .post(format!("{}/api/v1/shows/{id}/stream-key", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["rtmp_url"], format!("rtmp://{}/live", self.rtmp));
        assert_eq!(v["srt_url"], format!("srt://{}", self.srt));
        v["stream_key"].as_str().unwrap().to_owned()
    }

    async fn ingest(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/api/v1/shows/{id}/ingest", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/live/{key}", self.rtmp)
    }

    fn srt_url(&self, key: &str) -> String {
        format!("srt://{}?streamid={key}", self.srt)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// ffmpeg publishing a test pattern and a tone in real time; killed (SIGKILL, as a crashed encoder or a
/// pulled cable) on drop.
struct Encoder(std::process::Child);

impl Drop for Encoder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn encoder_command(url: &str, seconds: Option<u32>) -> Command {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
    ]);
    if let Some(s) = seconds {
        cmd.args(["-t", &s.to_string()]);
    }
    cmd.args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "50",
        "-c:a",
        "aac",
        "-f",
        if url.starts_with("srt://") {
            "mpegts"
        } else {
            "flv"
        },
        url,
    ]);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    cmd
}

fn publish(url: &str) -> Encoder {
    Encoder(
        encoder_command(url, None)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Publishes to `url` and asserts that ffmpeg is turned away: it fails within 15 s (a publish that were
/// accepted would run for the whole minute asked).
fn assert_refused(url: &str, what: &str) {
    let start = Instant::now();
    let mut child = encoder_command(url, Some(60))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(!status.success(), "{what}: the publish was accepted: {err}");
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the publish was not refused within 15 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A ticket's player: admitted through the playback API, reading the master playlist Usher writes for its
/// session, then the first rendition's live playlist and segments through the origin with its grant.
struct Viewer {
    client: Client,
    base: String,
    session: String,
    secret: String,
    /// The first rendition's playlist path under `/o/{grant}/`, and the grant.
    rendition: String,
    grant: String,
}

/// A live media playlist, as read.
struct Live {
    sequence: u64,
    segments: Vec<String>,
    text: String,
}

fn parse_playlist(text: &str) -> Live {
    let sequence = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    Live {
        sequence,
        segments: text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        text: text.to_owned(),
    }
}

impl Viewer {
    async fn admit(node: &Node, show: &str) -> Self {
        let token = Self::ticket(node, show).await;
        Self::admit_with(node, show, &format!("device-{show}-viewer"), &token).await
    }

    /// A new ticket's token for `show`.
    async fn ticket(node: &Node, show: &str) -> String {
        let ticket: Value = node
            .client
            .post(format!("{}/api/v1/tickets", node.base))
            .bearer_auth(&node.admin)
            .json(&json!({"show_id": show}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ticket["token"].as_str().unwrap().to_owned()
    }

    /// The ticket `token` admitted on device `device`.
    async fn admit_with(node: &Node, show: &str, device: &str, token: &str) -> Self {
        let res = node
            .client
            .post(format!("{}/api/v1/playback", node.base))
            .header("x-usher-device", device)
            .json(&json!({"token": token}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let v: Value = res.json().await.unwrap();
        // the master playlist appears with the first segments
        let master_url = format!("{}{}", node.base, v["playlist_url"].as_str().unwrap());
        let master = wait_until(Duration::from_secs(15), "the master playlist", || async {
            let res = node.client.get(&master_url).send().await.ok()?;
            if res.status() == StatusCode::NOT_FOUND {
                return None;
            }
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.ok()
        })
        .await
        .expect("the master playlist within 15 s");
        let first = master
            .lines()
            .find(|l| l.starts_with("/o/"))
            .unwrap_or_else(|| panic!("no rendition in the master playlist:\n{master}"));
        // the master names the session's grant (signed afresh for the request) and the rendition
        let (grant, rendition) = first["/o/".len()..].split_once('/').unwrap();
        let (grant, rendition) = (grant.to_owned(), rendition.to_owned());
        assert!(rendition.starts_with(&format!("live/{show}/")), "{first}");
        assert!(
            master.matches("#EXT-X-STREAM-INF").count() == 2,
            "the ladder's two renditions:\n{master}"
        );
        Viewer {
            client: node.client.clone(),
            base: node.base.clone(),
            session: v["session_id"].as_str().unwrap().to_owned(),
            secret: v["session_secret"].as_str().unwrap().to_owned(),
            rendition,
            grant,
        }
    }

    /// The live playlist, `None` while there is none yet.
    async fn playlist(&self) -> Option<Live> {
        let res = self
            .client
            .get(format!("{}/o/{}/{}", self.base, self.grant, self.rendition))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::NOT_FOUND {
            return None;
        }
        assert_eq!(res.status(), StatusCode::OK);
        Some(parse_playlist(&res.text().await.unwrap()))
    }

    /// A segment of the playlist, checked to be MPEG-TS.
    async fn segment(&self, name: &str) -> usize {
        let folder = self.rendition.rsplit_once('/').unwrap().0;
        let res = self
            .client
            .get(format!("{}/o/{}/{folder}/{name}", self.base, self.grant))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "segment {name}");
        let body = res.bytes().await.unwrap();
        assert!(
            body.len() > 188 && body[0] == 0x47 && body[188] == 0x47,
            "segment {name} is MPEG-TS"
        );
        body.len()
    }

    /// A heartbeat: the session still holds its seat; the grant and secret move on.
    async fn heartbeat(&mut self) {
        let res = self
            .client
            .post(format!(
                "{}/api/v1/playback/{}/heartbeat",
                self.base, self.session
            ))
            .header("x-usher-session-secret", &self.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["status"], "ok", "{v}");
        self.secret = v["session_secret"].as_str().unwrap().to_owned();
        self.grant = v["grants"][0]["token"].as_str().unwrap().to_owned();
    }

    /// Waits until the playlist lists at least `n` segments after `after` (the last segment seen) and
    /// reads the newest.
    async fn wait_for_new_segments(&self, after: Option<&str>, n: usize, within: Duration) -> Live {
        let live = wait_until(within, "new live segments", || async {
            let live = self.playlist().await?;
            let fresh = match after {
                Some(a) => live
                    .segments
                    .iter()
                    .position(|s| s == a)
                    .map_or(live.segments.len(), |i| live.segments.len() - i - 1),
                None => live.segments.len(),
            };
            (fresh >= n).then_some(live)
        })
        .await
        .unwrap_or_else(|_| panic!("no {n} new segments after {after:?} within {within:?}"));
        self.segment(live.segments.last().unwrap()).await;
        live
    }
}

/// Every segment of a live media playlist with its IV (hex: the key line's, else its media sequence
/// number) and key URI (without its query).
fn keyed_segments(text: &str) -> Vec<(String, String, String)> {
    let mut sequence: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut key = String::new();
    let mut iv = None::<String>;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-KEY:") {
            assert!(attrs.contains("METHOD=AES-128"), "{line}");
            iv = attrs
                .split("IV=0x")
                .nth(1)
                .map(|v| v.split(',').next().unwrap().to_lowercase());
            key = attrs
                .split("URI=\"")
                .nth(1)
                .unwrap()
                .split(['?', '"'])
                .next()
                .unwrap()
                .to_owned();
        } else if !line.is_empty() && !line.starts_with('#') {
            assert!(!key.is_empty(), "a segment before any key:\n{text}");
            let iv = iv.clone().unwrap_or_else(|| format!("{sequence:032x}"));
            out.push((iv, key.clone(), line.to_owned()));
            sequence += 1;
        }
    }
    out
}

/// `segment` decrypted with `key` and `iv` (hex; AES-128-CBC) by openssl, and the H.264 packets ffprobe
/// reads in it.
fn decrypts(segment: &[u8], key: &[u8], iv: &str, dir: &std::path::Path) -> u64 {
    let (input, output) = (dir.join("enc.ts"), dir.join("dec.ts"));
    std::fs::write(&input, segment).unwrap();
    let _ = std::fs::remove_file(&output);
    let ok = Command::new("openssl")
        .args(["aes-128-cbc", "-d", "-K", &hex::encode(key), "-iv", iv])
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !ok {
        return 0;
    }
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(&output)
        .output()
        .unwrap();
    // a line per program and per stream
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .max()
        .unwrap_or(0)
}

/// An `aes-128` live show (issue 18): every period of `ingest.key_rotation_s` (4 s here) its segments
/// are encrypted with a new key that only a session holding its seat gets; a device that lost its seat
/// gets no key of a later period, so it stops within one rotation whatever a CDN cached; the clear key
/// files never reach the media folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_live_show_rotates_keys_only_the_seat_holder_gets() {
    for t in ["ffprobe", "openssl"] {
        tool(t);
    }
    let node = node().await;
    let starts = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let key = node
        .live_show_until(
            "enc",
            starts,
            starts + time::Duration::hours(1),
            json!({"encryption": "aes-128", "max_devices": 1}),
        )
        .await;
    let _encoder = publish(&node.rtmp_url(&key));
    let token = Viewer::ticket(&node, "enc").await;
    let first = Viewer::admit_with(&node, "enc", "device-enc-first", &token).await;
    // raw reads: the viewer's helpers expect plain MPEG-TS
    let raw = |path: String| {
        let client = node.client.clone();
        let base = node.base.clone();
        async move {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            (res.status(), res.bytes().await.unwrap().to_vec())
        }
    };
    let key_of = |uri: String, session: String, secret: String| {
        let client = node.client.clone();
        async move {
            let res = client
                .get(uri)
                .header("x-usher-session", session)
                .header("x-usher-session-secret", secret)
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body = res.bytes().await.unwrap().to_vec();
            (status, body)
        }
    };
    let playlist_of = |grant: String, rendition: String| async move {
        let (status, body) = raw(format!("/o/{grant}/{rendition}")).await;
        (status == StatusCode::OK).then(|| String::from_utf8(body).unwrap())
    };
    // within a few rotations the playlist names two keys or more
    let text = wait_until(Duration::from_secs(30), "two keys in the playlist", || {
        let f = playlist_of(first.grant.clone(), first.rendition.clone());
        async move {
            let text = f.await?;
            let keys: std::collections::BTreeSet<String> = keyed_segments(&text)
                .into_iter()
                .map(|(_, k, _)| k)
                .collect();
            (keys.len() >= 2).then_some(text)
        }
    })
    .await
    .expect("the key rotates every 4 s");
    let segments = keyed_segments(&text);
    assert!(
        segments[0]
            .1
            .starts_with(&format!("{}/keys/ck_", node.base)),
        "{text}"
    );
    let folder = first.rendition.rsplit_once('/').unwrap().0.to_owned();
    let (iv, key_uri, name) = segments.last().unwrap().clone();
    // no IV twice: each segment has its own (its media sequence number)
    let ivs: std::collections::BTreeSet<&String> = segments.iter().map(|(iv, _, _)| iv).collect();
    assert_eq!(ivs.len(), segments.len(), "{text}");
    let (status, segment) = raw(format!("/o/{}/{folder}/{name}", first.grant)).await;
    assert_eq!(status, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        decrypts(&segment, &[0; 16], &iv, dir.path()),
        0,
        "not readable without its key"
    );
    assert!(
        !(segment.len() > 188 && segment[0] == 0x47 && segment[188] == 0x47),
        "not plain MPEG-TS"
    );
    let (status, live_key) =
        key_of(key_uri.clone(), first.session.clone(), first.secret.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        decrypts(&segment, &live_key, &iv, dir.path()) > 0,
        "the seat's key decrypts it"
    );
    // an earlier period's key does not
    let (older_iv, older_uri, older_name) = segments
        .iter()
        .find(|(_, k, _)| *k != key_uri)
        .unwrap()
        .clone();
    let (_, older_key) = key_of(older_uri, first.session.clone(), first.secret.clone()).await;
    assert_ne!(older_key, live_key);
    assert_eq!(decrypts(&segment, &older_key, &iv, dir.path()), 0);
    let (_, older_segment) = raw(format!("/o/{}/{folder}/{older_name}", first.grant)).await;
    assert!(decrypts(&older_segment, &older_key, &older_iv, dir.path()) > 0);

    // a second device takes the seat: the first gets no key of the next period, the second does
    let second = Viewer::admit_with(&node, "enc", "device-enc-second", &token).await;
    // the origin stops the superseded device at once; the second one reads the playlist from now on
    let (status, _) = raw(format!("/o/{}/{}", first.grant, first.rendition)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let next = wait_until(
        Duration::from_secs(20),
        "a key made after the takeover",
        || {
            let f = playlist_of(second.grant.clone(), second.rendition.clone());
            let seen: std::collections::BTreeSet<String> =
                segments.iter().map(|(_, k, _)| k.clone()).collect();
            async move {
                let text = f.await?;
                keyed_segments(&text)
                    .into_iter()
                    .map(|(_, k, _)| k)
                    .find(|k| !seen.contains(k))
            }
        },
    )
    .await
    .expect("a new key within a rotation");
    let (status, _) = key_of(next.clone(), first.session.clone(), first.secret.clone()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the superseded device gets no new key"
    );
    let (status, fresh) = key_of(next, second.session.clone(), second.secret.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fresh.len(), 16);

    // the clear keys are nowhere under the media folder, nor in the log
    let mut files = Vec::new();
    let mut stack = vec![node.media.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    assert!(
        files.iter().all(|f| !f.to_string_lossy().contains(".key")),
        "{files:?}"
    );
    let log = node.log_text();
    for k in [&live_key, &older_key, &fresh] {
        assert!(!log.contains(&hex::encode(k)), "a content key in the log");
    }
}

fn segment_number(name: &str) -> u64 {
    name.trim_start_matches("seg_")
        .trim_end_matches(".ts")
        .parse()
        .unwrap()
}

/// The whole story over one protocol: publish → viewer plays within 15 s; refusals; a 5-second drop-out
/// bridged for the same viewer; the end after the reconnect window.
async fn story(node: &Node, show: &str, url_of: impl Fn(&Node, &str) -> String) {
    let key = node.live_show(show, -1).await;
    let later_key = node.live_show(&format!("{show}-later"), 120).await;
    let started = Instant::now();
    let first = publish(&url_of(node, &key));
    let mut viewer = Viewer::admit(node, show).await;
    let live = viewer
        .wait_for_new_segments(None, 1, Duration::from_secs(15))
        .await;
    let to_first_segment = started.elapsed();
    eprintln!("publish → first segment served: {to_first_segment:?}");
    assert!(!live.text.contains("#EXT-X-ENDLIST"));

    // the status says live, with what the input looks like
    let status = wait_until(Duration::from_secs(10), "live status", || async {
        let v = node.ingest(show).await;
        (v["state"] == "live" && v["bitrate_kbps"].as_u64().is_some_and(|b| b > 0)).then_some(v)
    })
    .await
    .unwrap();
    assert_eq!(status["input"]["width"], 640, "{status}");
    assert_eq!(status["input"]["height"], 360, "{status}");
    assert!(status.get("stream_key").is_none());

    // refused: a wrong key, a show outside its window, a second publisher
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_refused(&url_of(node, &wrong), "a wrong key");
    assert_refused(&url_of(node, &later_key), "a show two hours away");
    assert_refused(&url_of(node, &key), "a second publisher");
    // the first one went on all along
    let before_drop = viewer
        .wait_for_new_segments(
            live.segments.last().map(String::as_str),
            2,
            Duration::from_secs(15),
        )
        .await;
    viewer.heartbeat().await;

    // the encoder drops out for 5 s and comes back: the same playlist goes on for the same viewer
    drop(first);
    let dropped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reconnecting = node.ingest(show).await;
    assert_eq!(reconnecting["state"], "reconnecting", "{reconnecting}");
    let last_before = before_drop.segments.last().unwrap().clone();
    let second = publish(&url_of(node, &key));
    let after = viewer
        .wait_for_new_segments(Some(&last_before), 2, Duration::from_secs(20))
        .await;
    eprintln!(
        "drop-out → new segments served: {:?} (5 s of it the encoder was away)",
        dropped_at.elapsed()
    );
    assert!(
        after.sequence >= before_drop.sequence,
        "the media sequence goes on: {} then {}",
        before_drop.sequence,
        after.sequence
    );
    let old = after
        .segments
        .iter()
        .position(|s| *s == last_before)
        .unwrap_or_else(|| panic!("the playlist still lists {last_before}:\n{}", after.text));
    assert!(
        after.text.contains("#EXT-X-DISCONTINUITY"),
        "{}",
        after.text
    );
    assert_eq!(
        segment_number(&after.segments[old + 1]),
        segment_number(&last_before) + 1,
        "the segment numbers go on:\n{}",
        after.text
    );
    viewer.heartbeat().await;
    viewer.segment(after.segments.last().unwrap()).await;
    assert_eq!(node.ingest(show).await["state"], "live");

    // gone for good: after the reconnect window the playlists end
    drop(second);
    let ended = wait_until(Duration::from_secs(30), "the stream's end", || async {
        let live = viewer.playlist().await?;
        live.text.contains("#EXT-X-ENDLIST").then_some(live)
    })
    .await
    .unwrap();
    assert!(ended.segments.len() > after.segments.len() - old);
    assert_eq!(node.ingest(show).await["state"], "ended");
    let on_disk = std::fs::read_to_string(
        node.media
            .join(format!("live/{show}"))
            .join(
                viewer
                    .rendition
                    .rsplit_once('/')
                    .unwrap()
                    .0
                    .rsplit('/')
                    .next()
                    .unwrap(),
            )
            .join("index.m3u8"),
    )
    .unwrap();
    assert!(on_disk.ends_with("#EXT-X-ENDLIST\n"));

    let log = node.log_text();
    for secret in [&key, &later_key] {
        let secret_part = secret.split_once('.').unwrap().1;
        assert!(!log.contains(secret_part), "a stream key in the log");
    }
    for reason in ["bad_key", "too_early", "busy"] {
        assert!(log.contains(reason), "refusal {reason} logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_publish_plays_refuses_and_survives_a_drop() {
    let node = node().await;
    story(&node, "rtmp-show", Node::rtmp_url).await;
    let metrics = node
        .client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"usher_ingest_publishes_total{protocol="rtmp",outcome="accepted"} 2"#,
        r#"usher_ingest_publishes_total{protocol="rtmp",outcome="bad_key"} 1"#,
        r#"usher_ingest_publishes_total{protocol="rtmp",outcome="too_early"} 1"#,
        r#"usher_ingest_publishes_total{protocol="rtmp",outcome="busy"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_publish_plays_refuses_and_survives_a_drop() {
    let node = node().await;
    story(&node, "srt-show", Node::srt_url).await;
}

/// ffmpeg dying while the encoder publishes is started again: the same playlist goes on (appending after
/// a discontinuity) without the encoder noticing, and the failure is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_transcoder_is_restarted_and_the_playlist_goes_on() {
    let node = node().await;
    // a DVR window of 10 s: five segments of 2 s
    let now = time::OffsetDateTime::now_utc();
    let key = node
        .live_show_until(
            "crash",
            now - time::Duration::minutes(1),
            now + time::Duration::hours(1),
            json!({"live_dvr_s": 10}),
        )
        .await;
    let encoder = publish(&node.rtmp_url(&key));
    let viewer = Viewer::admit(&node, "crash").await;
    let before = viewer
        .wait_for_new_segments(None, 2, Duration::from_secs(15))
        .await;
    // the transcoder is the usher process's ffmpeg child
    let usher = node.child.id().to_string();
    let out = Command::new("pgrep")
        .args(["-P", &usher, "ffmpeg"])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(pids.len(), 1, "one ffmpeg for one publish: {pids:?}");
    assert!(
        Command::new("kill")
            .args(["-KILL", &pids[0]])
            .status()
            .unwrap()
            .success()
    );
    let last = before.segments.last().unwrap().clone();
    let after = viewer
        .wait_for_new_segments(Some(&last), 2, Duration::from_secs(20))
        .await;
    assert!(
        after.text.contains("#EXT-X-DISCONTINUITY"),
        "{}",
        after.text
    );
    assert!(after.sequence >= before.sequence);
    // the show's DVR window, not the node's 60 s: old segments leave the playlist
    let sliding = viewer
        .wait_for_new_segments(
            after.segments.last().map(String::as_str),
            4,
            Duration::from_secs(20),
        )
        .await;
    assert!(
        sliding.segments.len() <= 6 && sliding.sequence > 0,
        "a sliding window of 5 segments:\n{}",
        sliding.text
    );
    let status = node.ingest("crash").await;
    assert_eq!(status["state"], "live", "{status}");
    assert_eq!(
        status["publishes"], 1,
        "the encoder did not have to reconnect"
    );
    let metrics = node
        .client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("usher_ingest_transcoder_failures_total 1"),
        "{metrics}"
    );
    assert!(
        node.log_text()
            .contains("ffmpeg stopped while the encoder published")
    );
    drop(encoder);
}

/// The show's publish window closing cuts the encoder and ends the stream at once (no reconnect window),
/// and a publish after it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_window_end_cuts_the_publish_and_ends_the_stream() {
    let node = node_with_margin(0).await;
    // the ticket site hears of the stream's start and end
    let inbox = crate::webhooks::Inbox::default();
    let (hooks, receiver) =
        crate::webhooks::receiver("127.0.0.1:0".parse().unwrap(), inbox.clone()).await;
    let res = node
        .client
        .post(format!("{}/api/v1/webhooks", node.base))
        .bearer_auth(&node.admin)
        .json(
            &json!({"url": format!("http://{hooks}/hooks"), "events": ["show.live", "show.ended"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let now = time::OffsetDateTime::now_utc();
    let ends = now + time::Duration::seconds(12);
    // kept whole as its recording, though its DVR window is one segment
    let key = node
        .live_show_until(
            "closing",
            now - time::Duration::minutes(1),
            ends,
            json!({"live_recording": true, "live_dvr_s": 6}),
        )
        .await;
    let mut encoder = publish(&node.rtmp_url(&key));
    let viewer = Viewer::admit(&node, "closing").await;
    viewer
        .wait_for_new_segments(None, 1, Duration::from_secs(15))
        .await;
    // the encoder is cut at the window's end: ffmpeg stops on its own
    let cut = wait_until(Duration::from_secs(20), "the encoder cut", || {
        let status = encoder.0.try_wait().unwrap();
        async move { status }
    })
    .await
    .expect("the publish was cut when the window closed");
    assert!(
        time::OffsetDateTime::now_utc() >= ends,
        "not before the end"
    );
    assert!(!cut.success());
    // ended at once, not after the 12-second reconnect window
    let ended = wait_until(Duration::from_secs(6), "the stream's end", || async {
        let live = viewer.playlist().await?;
        live.text.contains("#EXT-X-ENDLIST").then_some(live)
    })
    .await
    .expect("ENDLIST right after the window");
    // the recording: every segment from the first, an EVENT playlist ended, each segment served
    assert!(
        ended.sequence == 0 && ended.segments.len() >= 4 && ended.segments[0] == "seg_000000.ts",
        "the whole stream is kept:\n{}",
        ended.text
    );
    assert!(
        ended.text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"),
        "{}",
        ended.text
    );
    for s in &ended.segments {
        viewer.segment(s).await;
    }
    assert_eq!(node.ingest("closing").await["state"], "ended");
    assert_refused(&node.srt_url(&key), "a publish after the window");
    assert!(node.log_text().contains("window_over"));
    wait_until(Duration::from_secs(10), "show.live and show.ended", || {
        let done = crate::webhooks::event_ids(&inbox, "show.live").len() == 1
            && crate::webhooks::event_ids(&inbox, "show.ended").len() == 1;
        async move { done.then_some(()) }
    })
    .await
    .expect("one show.live and one show.ended");
    receiver.abort();
}

/// With ingest on, a node without a usable ffmpeg does not start, and says why.
#[test]
fn ingest_without_ffmpeg_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = serve_config(
        dir.path(),
        "[ingest]\nrtmp_listen = \"127.0.0.1:0\"\nffmpeg = \"/nonexistent/ffmpeg\"\n",
    );
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ffmpeg (`/nonexistent/ffmpeg`) cannot be run")
            && err.contains("ingest.ffmpeg"),
        "{err}"
    );
}

/// Hostile input on the ingest ports: garbage, a bad RTMP handshake, a client that never publishes, a
/// huge chunk before publishing, and UDP garbage on the SRT port; the node keeps answering and still takes
/// a real publish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_dropped_and_publishing_still_works() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let node = node().await;
    let key = node.live_show("hostile", -1).await;
    // garbage instead of a handshake
    let mut s = tokio::net::TcpStream::connect(&node.rtmp).await.unwrap();
    s.write_all(&[0xFF; 4096]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "a bad handshake is dropped: {n:?}"
    );
    // a valid C0 and C1, then megabytes of junk: cut off at the pre-publish budget
    let mut s = tokio::net::TcpStream::connect(&node.rtmp).await.unwrap();
    let mut hello = vec![3u8];
    hello.extend(std::iter::repeat_n(0u8, 1536));
    s.write_all(&hello).await.unwrap();
    let junk = vec![0x04u8; 1 << 20];
    let mut sent = 0usize;
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_secs(5), s.write_all(&junk)).await {
            Ok(Ok(())) => sent += junk.len(),
            _ => break,
        }
    }
    assert!(sent < 16 << 20, "the connection was cut before 16 MiB");
    // a silent client is dropped at the hello deadline, not held
    let silent = tokio::net::TcpStream::connect(&node.rtmp).await.unwrap();
    // UDP garbage on the SRT port
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..200u32 {
        let mut datagram = vec![0u8; 1316];
        datagram[..4].copy_from_slice(&i.to_be_bytes());
        datagram[0] |= 0x80; // a control packet's flag, with nonsense after it
        udp.send_to(&datagram, &node.srt).await.unwrap();
    }
    let res = node
        .client
        .get(format!("{}/readyz", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // the real thing still works on both ports
    let encoder = publish(&node.srt_url(&key));
    let mut viewer = Viewer::admit(&node, "hostile").await;
    viewer
        .wait_for_new_segments(None, 1, Duration::from_secs(15))
        .await;
    viewer.heartbeat().await;
    drop(encoder);
    let mut silent = silent;
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a client that never publishes is dropped: {closed:?}"
    );
}

/// In process: the stream key is made and shown once, a rotation replaces it, each is audited, the status
/// never shows it, and a node without `[ingest]` answers without ingest URLs.
#[tokio::test]
async fn stream_keys_are_shown_once_rotated_and_audited() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    let res = app
        .put_show(
            "keyed",
            json!({
                "title": "Keyed", "kind": "live", "stream_path": "keyed",
                "starts_at": rfc3339(now), "ends_at": rfc3339(now + time::Duration::hours(1)),
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let status: Value = app
        .get_with("/api/v1/shows/keyed/ingest", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "waiting");
    assert_eq!(status["has_stream_key"], false);
    assert_eq!(status["rtmp_url"], Value::Null);
    let rotate = || async {
        let res = app
            .client
            .post(app.url("/api/v1/shows/keyed/stream-key"))
            .bearer_auth(&app.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        let v: Value = res.json().await.unwrap();
        v["stream_key"].as_str().unwrap().to_owned()
    };
    let first = rotate().await;
    let second = rotate().await;
    assert!(first.starts_with("keyed.") && second.starts_with("keyed."));
    assert_ne!(first, second);
    assert!(first.len() >= 6 + 43, "32 random bytes: {first}");
    let status = app
        .get_with("/api/v1/shows/keyed/ingest", &app.admin_key)
        .await
        .text()
        .await
        .unwrap();
    assert!(status.contains(r#""has_stream_key":true"#), "{status}");
    assert!(!status.contains(&first[6..]) && !status.contains(&second[6..]));
    // the stored hash answers the new key only
    let stored = app
        .state
        .store
        .stream_key(&usher_core::ids::ShowId::parse("keyed").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.hash.ct_eq(&app.state.hasher.stream_key(&second)));
    assert!(!stored.hash.ct_eq(&app.state.hasher.stream_key(&first)));
    let audit = app
        .get_with("/api/v1/audit?action=show.stream_key", &app.admin_key)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        audit.contains("created") && audit.contains("rotated"),
        "{audit}"
    );
    assert!(!audit.contains(&first[6..]) && !audit.contains(&second[6..]));
    // unknown shows
    let res = app
        .client
        .post(app.url("/api/v1/shows/nope/stream-key"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .get_with("/api/v1/shows/nope/ingest", &app.admin_key)
        .await;
    crate::support::assert_problem(res, StatusCode::NOT_FOUND, "show_unknown").await;
    // a path that is not UTF-8 once decoded
    let res = app
        .get_with("/api/v1/shows/%FF%FE/ingest", &app.admin_key)
        .await;
    crate::support::assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = app
        .client
        .post(app.url("/api/v1/shows/%FF%FE/stream-key"))
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    crate::support::assert_problem(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    // the console: the show page has the ingest section; its form makes a key shown on that answer only
    use crate::admin_console::{add_user, login};
    add_user(&app, "operator", usher_core::admin::Role::Admin).await;
    let session = login(&app, "operator").await;
    let page = |path: &'static str| {
        let (app, cookie) = (&app, session.cookie.clone());
        async move {
            let res = app
                .client
                .get(app.url(path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.unwrap()
        }
    };
    let html = page("/admin/shows/keyed").await;
    assert!(
        html.contains("Live ingest") && html.contains("id=\"ingest-state\">waiting"),
        "{html}"
    );
    assert!(html.contains("Ingest is off on this node"));
    let res = app
        .client
        .post(app.url("/admin/shows/keyed/stream-key"))
        .header("cookie", &session.cookie)
        .form(&[("_csrf", session.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let third = crate::admin_console::between(&html, "<code id=\"ingest-key\">", "</code>")
        .expect("the new key on the page")
        .to_owned();
    assert!(third.starts_with("keyed.") && third != second);
    let again = page("/admin/shows/keyed").await;
    assert!(!again.contains(&third[6..]), "the key is shown once");
    assert!(page("/admin").await.contains("Dashboard"));
    app.shutdown().await;
}
