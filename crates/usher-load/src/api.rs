//! Usher's HTTP API as the load tool uses it: create a show, register tickets in batches, and the viewer
//! calls (admit, heartbeat, leave, playlists, steering reloads, segments).
//!
//! The viewer calls behave as a well-behaved app does with its session's secret: the admit's
//! `session_secret` is kept in the [`Session`], every call about the session (heartbeat, leave, master
//! playlist, steering reload) sends the current one in `X-Usher-Session-Secret`, and the caller adopts the
//! next one from each heartbeat's answer ([`Session::adopt`]). A server older than session secrets answers
//! none and asks for none; the calls then send none.

use std::time::Duration;

use anyhow::{Context as _, bail};
use hyper::Method;
use hyper::header::{HeaderName, HeaderValue, InvalidHeaderValue};
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use serde::Deserialize;
use serde_json::json;

use crate::client::{Call, Failure, Lanes, Reply};
use crate::stats::{Op, Recorder, http_kind};

/// Most tickets in one batch request (the server's limit).
pub const BATCH: usize = 10_000;

/// Header by which apps name their device.
pub const DEVICE_HEADER: HeaderName = HeaderName::from_static("x-usher-device");

/// Header by which apps send their session's current secret.
pub const SECRET_HEADER: HeaderName = HeaderName::from_static("x-usher-session-secret");

/// The outcome of one viewer call.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The expected success.
    Ok(T, Duration),
    /// Another HTTP answer.
    Http(Reply),
    /// No answer.
    Failed(Failure),
}

/// The show a run creates.
#[derive(Debug, Clone)]
pub struct ShowSetup {
    /// Its id.
    pub id: String,
    /// Heartbeat interval (the server's default when `None`).
    pub heartbeat_s: Option<u32>,
    /// Devices per ticket.
    pub max_devices: u32,
    /// Media folder of the stream.
    pub stream_path: String,
    /// `none` or `aes-128` (the folder must be packaged so, e.g. the demo's `demo-aes`).
    pub encryption: String,
    /// Doors-open capacity: the most viewers at once (`None`: no limit).
    pub capacity: Option<u32>,
    /// Doors-open rate: newcomers let in per second (`None`: no limit).
    pub admit_rate_per_s: Option<u32>,
}

/// Creates (or replaces) the show with `PUT /api/v1/shows/{id}`: open from an hour ago for a day.
///
/// # Errors
/// When the server refuses.
pub async fn put_show(lanes: &Lanes, admin_key: &str, show: &ShowSetup) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("RFC 3339 formats any UTC time")
    };
    let mut body = json!({
        "title": format!("usher-load {}", show.id),
        "kind": "vod",
        "starts_at": fmt(now - time::Duration::hours(1)),
        "ends_at": fmt(now + time::Duration::days(1)),
        "stream_path": show.stream_path,
        "max_devices": show.max_devices,
        "policy": "newest_wins",
        "encryption": show.encryption,
    });
    if let Some(h) = show.heartbeat_s {
        body["heartbeat_interval_s"] = json!(h);
    }
    if let Some(c) = show.capacity {
        body["capacity"] = json!(c);
    }
    if let Some(r) = show.admit_rate_per_s {
        body["admit_rate_per_s"] = json!(r);
    }
    let path = format!("/api/v1/shows/{}", show.id);
    let reply = lanes
        .send(
            0,
            Call::json(Method::PUT, &path, serde_json::to_vec(&body)?).bearer(admin_key),
        )
        .await
        .with_context(|| format!("PUT {path}"))?;
    if !reply.status.is_success() {
        bail!(
            "PUT {path} answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(())
}

/// `n` fresh ticket tokens (32 alphanumeric characters, about 190 random bits).
pub fn make_tokens(n: usize) -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| {
            let s: String = (&mut rng)
                .sample_iter(&Alphanumeric)
                .take(30)
                .map(char::from)
                .collect();
            format!("lt{s}")
        })
        .collect()
}

/// A fresh device id (24 alphanumeric characters).
pub fn make_device() -> String {
    let s: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(22)
        .map(char::from)
        .collect();
    format!("ld{s}")
}

#[derive(Deserialize)]
struct BatchAnswer {
    created: u64,
    existing: u64,
    failed: u64,
}

/// What registration did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Registered {
    /// New tickets.
    pub created: u64,
    /// Tokens already registered identically.
    pub existing: u64,
    /// Items refused.
    pub failed: u64,
}

/// Registers every token for `show_id` through `POST /api/v1/tickets/batch`, in chunks of [`BATCH`], one
/// request at a time; each request is timed under [`Op::Register`].
///
/// # Errors
/// When a batch request fails as a whole.
pub async fn register(
    lanes: &Lanes,
    rec: &Recorder,
    tickets_key: &str,
    show_id: &str,
    tokens: &[String],
) -> anyhow::Result<Registered> {
    let mut total = Registered::default();
    for chunk in tokens.chunks(BATCH) {
        let body = json!({
            "tickets": chunk.iter().map(|t| json!({"show_id": show_id, "token": t})).collect::<Vec<_>>(),
        });
        let call = Call::json(
            Method::POST,
            "/api/v1/tickets/batch",
            serde_json::to_vec(&body)?,
        )
        .bearer(tickets_key);
        let reply = match lanes.send(0, call).await {
            Ok(r) => r,
            Err(f) => {
                rec.failure(Op::Register, &f);
                bail!("registering tickets: {f}");
            }
        };
        if !reply.status.is_success() {
            rec.http_error(Op::Register, &reply);
            bail!(
                "registering tickets: {} {}",
                http_kind(&reply),
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
            );
        }
        let a: BatchAnswer =
            serde_json::from_slice(&reply.body).context("batch answer is not JSON")?;
        rec.ok(Op::Register, reply.latency, chunk.len() as u64);
        total.created += a.created;
        total.existing += a.existing;
        total.failed += a.failed;
    }
    Ok(total)
}

/// An admitted session as the tool keeps it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// Heartbeat interval the server asks for.
    pub heartbeat_s: u32,
    /// Its master playlist as the admit answered it (for an app, with `?secret=` for a native player).
    pub playlist_url: String,
    /// The current origin grant.
    pub grant: Option<String>,
    /// The session's current secret, sent with every call about the session (`None`: the server
    /// handed out none, being older than session secrets).
    pub secret: Option<HeaderValue>,
    /// The admit re-attached to a session the device already held.
    pub reattached: bool,
}

impl Session {
    /// Takes what a renewal answered: its grant, and its secret as the current one (the one sent becomes
    /// the server's "previous", good only for resending after a lost answer).
    pub fn adopt(&mut self, renewal: Renewal) {
        if renewal.grant.is_some() {
            self.grant = renewal.grant;
        }
        if renewal.secret.is_some() {
            self.secret = renewal.secret;
        }
    }

    /// The master playlist's path without the URL's secret: the tool sends the secret in the header, as
    /// the watch page's player sends its cookie, so the playlist's steering URI carries none and steering
    /// reloads only check (see [`steering`]).
    pub fn master_path(&self) -> &str {
        self.playlist_url
            .split_once('?')
            .map_or(self.playlist_url.as_str(), |(path, _)| path)
    }

    /// The content-steering manifest's path.
    pub fn steering_path(&self) -> String {
        format!("/hls/{}/steering.json", self.id)
    }
}

/// What a successful heartbeat hands back.
#[derive(Debug, Clone, Default)]
pub struct Renewal {
    /// The first fresh grant.
    pub grant: Option<String>,
    /// The session's next secret.
    pub secret: Option<HeaderValue>,
}

#[derive(Deserialize)]
struct GrantView {
    token: String,
}

#[derive(Deserialize)]
struct AdmitView {
    session_id: String,
    heartbeat_interval_s: u32,
    playlist_url: String,
    #[serde(default)]
    session_secret: Option<String>,
    #[serde(default)]
    reattached: bool,
    #[serde(default)]
    grants: Vec<GrantView>,
}

#[derive(Deserialize)]
struct HeartbeatView {
    #[serde(default)]
    status: String,
    #[serde(default)]
    session_secret: Option<String>,
    #[serde(default)]
    grants: Vec<GrantView>,
}

/// A secret as an answer hands it out; `Err` when it cannot ride in a header (a malformed answer).
fn secret_value(text: Option<String>) -> Result<Option<HeaderValue>, InvalidHeaderValue> {
    text.map(HeaderValue::try_from).transpose()
}

/// Adds `X-Usher-Session-Secret` when there is a secret.
fn with_secret<'a>(call: Call<'a>, secret: Option<&HeaderValue>) -> Call<'a> {
    match secret {
        Some(s) => call.header(SECRET_HEADER.clone(), s.clone()),
        None => call,
    }
}

/// Reads an admit's answer.
pub fn admission(body: &[u8]) -> Option<Session> {
    let v = serde_json::from_slice::<AdmitView>(body).ok()?;
    Some(Session {
        id: v.session_id,
        heartbeat_s: v.heartbeat_interval_s,
        playlist_url: v.playlist_url,
        grant: v.grants.into_iter().next().map(|g| g.token),
        secret: secret_value(v.session_secret).ok()?,
        reattached: v.reattached,
    })
}

/// `POST /api/v1/playback` with `{"token"}` and `X-Usher-Device`; success is 201. A device admitting
/// again (after its session was superseded, or to take the seat back) presents the secret it holds,
/// `presented`, as an app does: the server re-attaches it only if that secret still controls the device's
/// session.
pub async fn admit(
    lanes: &Lanes,
    lane: usize,
    token: &str,
    device: &str,
    presented: Option<&HeaderValue>,
) -> Outcome<Session> {
    let body = serde_json::to_vec(&json!({ "token": token })).expect("JSON of a string");
    let device = HeaderValue::from_str(device).expect("device ids are header-safe");
    let call =
        Call::json(Method::POST, "/api/v1/playback", body).header(DEVICE_HEADER.clone(), device);
    match lanes.send(lane, with_secret(call, presented)).await {
        Ok(r) if r.status.as_u16() == 201 => match admission(&r.body) {
            Some(session) => Outcome::Ok(session, r.latency),
            None => Outcome::Http(r),
        },
        Ok(r) => Outcome::Http(r),
        Err(f) => Outcome::Failed(f),
    }
}

/// `POST /api/v1/playback/{id}/heartbeat` with the session's current secret; success is 200 with fresh
/// grants (the first one returned) and the next secret, which the caller adopts ([`Session::adopt`]).
/// A 200 whose `status` is `degraded` (the store is unreachable and the server keeps the player going on
/// its grace; the secret stays) is not a success: it comes back as [`Outcome::Http`] and counts as an
/// error labelled `200`.
pub async fn heartbeat(lanes: &Lanes, lane: usize, session: &Session) -> Outcome<Renewal> {
    let path = format!("/api/v1/playback/{}/heartbeat", session.id);
    let call = with_secret(
        Call::json(Method::POST, &path, Vec::new()),
        session.secret.as_ref(),
    );
    match lanes.send(lane, call).await {
        Ok(r) if r.status.as_u16() == 200 => {
            let Ok(view) = serde_json::from_slice::<HeartbeatView>(&r.body) else {
                return Outcome::Http(r);
            };
            if view.status == "degraded" {
                return Outcome::Http(r);
            }
            let Ok(secret) = secret_value(view.session_secret) else {
                return Outcome::Http(r);
            };
            let grant = view.grants.into_iter().next().map(|g| g.token);
            Outcome::Ok(Renewal { grant, secret }, r.latency)
        }
        Ok(r) => Outcome::Http(r),
        Err(f) => Outcome::Failed(f),
    }
}

/// A heartbeat's answer `200 {"status": "degraded"}` (the store is unreachable and the server keeps the
/// player going on what it holds): the seconds until the next heartbeat it asks for.
pub fn degraded_interval(reply: &Reply) -> Option<u32> {
    #[derive(Deserialize)]
    struct Degraded {
        status: String,
        #[serde(default)]
        heartbeat_interval_s: Option<u32>,
    }
    if reply.status.as_u16() != 200 {
        return None;
    }
    let v = serde_json::from_slice::<Degraded>(&reply.body).ok()?;
    (v.status == "degraded").then(|| v.heartbeat_interval_s.unwrap_or(5).max(1))
}

/// An answer that asks to come back later: 503 (`store_unavailable` while the store is unreachable) or
/// 429 (`rate_limited`); the watch page waits its `Retry-After` and asks again.
pub fn come_back_later(reply: &Reply) -> bool {
    matches!(reply.status.as_u16(), 503 | 429)
}

/// `DELETE /api/v1/playback/{id}` with the session's current secret; success is 204.
pub async fn leave(lanes: &Lanes, lane: usize, session: &Session) -> Outcome<()> {
    let path = format!("/api/v1/playback/{}", session.id);
    let call = Call {
        method: Method::DELETE,
        ..Call::get(&path)
    };
    match lanes
        .send(lane, with_secret(call, session.secret.as_ref()))
        .await
    {
        Ok(r) if r.status.as_u16() == 204 => Outcome::Ok((), r.latency),
        Ok(r) => Outcome::Http(r),
        Err(f) => Outcome::Failed(f),
    }
}

/// The session's master playlist ([`Session::master_path`]) with its current secret in the header: the
/// server only checks it.
pub async fn master(lanes: &Lanes, lane: usize, session: &Session) -> Outcome<bytes::Bytes> {
    let call = with_secret(Call::get(session.master_path()), session.secret.as_ref());
    get(lanes, lane, call).await
}

/// A content-steering reload as the watch page's player makes it: `GET /hls/{id}/steering.json` with the
/// session's current secret in the header (the page's cookie, for an app). The server only checks the
/// secret and the seat, and hands out no new secret: the viewer's heartbeats renew. (A native player
/// instead reloads the URL chain that starts in the admit's `playlist_url`, `?secret=…`, and renews by it
/// without heartbeating; the tool does not model that player.)
pub async fn steering(lanes: &Lanes, lane: usize, session: &Session) -> Outcome<bytes::Bytes> {
    let path = session.steering_path();
    let call = with_secret(Call::get(&path), session.secret.as_ref());
    get(lanes, lane, call).await
}

/// A `GET` whose success is 200 (or 206); returns the body.
pub async fn fetch(lanes: &Lanes, lane: usize, path: &str) -> Outcome<bytes::Bytes> {
    get(lanes, lane, Call::get(path)).await
}

async fn get(lanes: &Lanes, lane: usize, call: Call<'_>) -> Outcome<bytes::Bytes> {
    match lanes.send(lane, call).await {
        Ok(r) if matches!(r.status.as_u16(), 200 | 206) => Outcome::Ok(r.body, r.latency),
        Ok(r) => Outcome::Http(r),
        Err(f) => Outcome::Failed(f),
    }
}

/// The header naming the session whose secret a key request carries.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("x-usher-session");

/// `GET /keys/{id}` (`path`) as an app asks for a content key: the session's id and current secret in
/// headers. Nothing is renewed, so the secret stays.
pub async fn key(
    lanes: &Lanes,
    lane: usize,
    path: &str,
    session: &Session,
) -> Outcome<bytes::Bytes> {
    // a session id is `s_` and hex; the server refuses anything else
    let id =
        HeaderValue::try_from(session.id.as_str()).unwrap_or(HeaderValue::from_static("invalid"));
    let call = with_secret(Call::get(path), session.secret.as_ref()).header(SESSION_HEADER, id);
    get(lanes, lane, call).await
}

/// The path (`/keys/ck_…`) of the first Usher content key a media playlist names, if any.
pub fn first_key_path(playlist: &str) -> Option<String> {
    let at = playlist.find("/keys/ck_")?;
    let rest = &playlist[at..];
    let end = rest.find(['?', '"', '\n']).unwrap_or(rest.len());
    Some(rest[..end].to_owned())
}

/// Records an outcome under `op` (`items` for a success) and returns the value of a success.
pub fn record<T>(
    rec: &Recorder,
    op: Op,
    outcome: Outcome<T>,
    items: impl FnOnce(&T) -> u64,
) -> Option<T> {
    match outcome {
        Outcome::Ok(v, latency) => {
            rec.ok(op, latency, items(&v));
            Some(v)
        }
        Outcome::Http(r) => {
            rec.http_error(op, &r);
            None
        }
        Outcome::Failed(f) => {
            rec.failure(op, &f);
            None
        }
    }
}

/// The first URI of a playlist (the first variant of a master, or the first segment of a media playlist),
/// and every URI.
pub fn playlist_uris(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlist_uris_skip_tags_and_blank_lines() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n/o/G/demo/360p/index.m3u8\n\n#EXTINF:2,\nseg_000.ts\n";
        assert_eq!(
            playlist_uris(text),
            ["/o/G/demo/360p/index.m3u8", "seg_000.ts"]
        );
    }

    #[test]
    fn tokens_and_devices_fit_the_server_rules() {
        for t in make_tokens(100) {
            assert!((16..=128).contains(&t.len()));
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        let d = make_device();
        assert!((8..=64).contains(&d.len()));
    }

    #[test]
    fn an_admission_keeps_its_secret_and_a_renewal_replaces_it() {
        let body = br#"{"session_id":"s1","heartbeat_interval_s":15,"playlist_url":"/hls/s1/master.m3u8?secret=AAAAAAAAAAAAAAAAAAAAAA","session_secret":"AAAAAAAAAAAAAAAAAAAAAA","reattached":false,"grants":[{"token":"g0"}]}"#;
        let mut s = admission(body).expect("an admission");
        assert_eq!(s.secret.as_ref().unwrap(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(s.master_path(), "/hls/s1/master.m3u8");
        assert_eq!(s.steering_path(), "/hls/s1/steering.json");
        s.adopt(Renewal {
            grant: Some("g1".into()),
            secret: Some(HeaderValue::from_static("BBBBBBBBBBBBBBBBBBBBBB")),
        });
        assert_eq!(s.secret.as_ref().unwrap(), "BBBBBBBBBBBBBBBBBBBBBB");
        assert_eq!(s.grant.as_deref(), Some("g1"));
        // a degraded or older answer without a secret keeps the one held
        s.adopt(Renewal::default());
        assert_eq!(s.secret.as_ref().unwrap(), "BBBBBBBBBBBBBBBBBBBBBB");
        assert_eq!(s.grant.as_deref(), Some("g1"));
    }

    #[test]
    fn a_server_without_session_secrets_is_still_spoken_to() {
        // the answer of a server older than session secrets (the base of a before/after benchmark)
        let body = br#"{"session_id":"s1","heartbeat_interval_s":15,"playlist_url":"/hls/s1/master.m3u8","grants":[]}"#;
        let s = admission(body).expect("an admission");
        assert!(s.secret.is_none());
        let call = with_secret(Call::get("/x"), s.secret.as_ref());
        assert!(call.headers.iter().all(|(n, _)| n != SECRET_HEADER));
        let call = with_secret(
            Call::get("/x"),
            Some(&HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA")),
        );
        assert!(call.headers.iter().any(|(n, _)| n == SECRET_HEADER));
    }
}
