//! The origin's in-memory copy of media files: segments are served from memory, not read from disk for
//! every request.
//!
//! Serving a segment through `tower_http::services::ServeFile` cost a `canonicalize`, a `metadata`, an
//! `open` and one read per 64 KiB chunk, each on the blocking pool (a thread hand-off per step): the
//! origin moved 0.21× the bytes of nginx's `sendfile` in BENCHMARKS.md. Here a file is resolved, checked
//! and read once, kept as `Bytes`, and written to the socket straight from that buffer (hyper writes large
//! bodies with `writev` without copying them again).
//!
//! - Only files up to `max_file_mb` are kept, within a total of `max_mb` (when full, entries leave in
//!   random order, which costs no bookkeeping on hits).
//! - A kept file is re-checked at most every `revalidate_ms`: its path is resolved again (so a symlink that
//!   now leads outside the media folder is refused) and its inode, length and modification time compared;
//!   a changed file is read again. Between checks a replaced file may still be served from memory for up
//!   to `revalidate_ms`.
//! - Playlists (`.m3u8`) are kept too, re-checked every `playlist_revalidate_ms` (250 ms): a live playlist
//!   changes with every segment, and a player sees a new segment at most that much later than on disk
//!   (HLS lets a cache keep a live playlist for half a target duration, a second or more). Reading a
//!   playlist from disk cost three hand-offs to the blocking pool per request.
//! - Answers: `200`, single byte ranges (`206`, `416` with `Content-Range: bytes */len`), several ranges
//!   answered whole (`200`, as RFC 9110 allows), `If-None-Match`/`If-Modified-Since` (`304`), `If-Range`,
//!   `HEAD`, `ETag` and `Last-Modified`.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

/// `[media_cache]`: how much of the media folder the origin keeps in memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaCacheSettings {
    /// Memory for kept files, in MiB; 0: every request reads the disk.
    pub max_mb: u64,
    /// Largest file kept, in MiB.
    pub max_file_mb: u64,
    /// Milliseconds between two checks that a kept file is unchanged on disk.
    pub revalidate_ms: u64,
    /// The same for playlists (`.m3u8`), which live streams rewrite with every segment.
    pub playlist_revalidate_ms: u64,
}

impl Default for MediaCacheSettings {
    fn default() -> Self {
        Self {
            max_mb: 256,
            max_file_mb: 16,
            revalidate_ms: 1_000,
            playlist_revalidate_ms: 250,
        }
    }
}

/// A file as it was on disk when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// One kept file.
struct Entry {
    body: Bytes,
    stamp: Stamp,
    last_modified: Option<SystemTime>,
    last_modified_header: Option<HeaderValue>,
    etag: HeaderValue,
    /// Milliseconds since the cache's epoch of the last check against the disk.
    checked_ms: AtomicI64,
}

/// What a lookup found.
pub enum Lookup<T = Response> {
    /// The file, from memory.
    Hit(T),
    /// Not kept (too large, caching off): serve it from disk.
    Bypass,
    /// No such file inside the media folder.
    Missing,
}

/// The origin's media files in memory.
pub struct MediaCache {
    root: PathBuf,
    max_bytes: u64,
    max_file_bytes: u64,
    revalidate_ms: i64,
    playlist_revalidate_ms: i64,
    epoch: Instant,
    entries: RwLock<HashMap<Box<str>, Arc<Entry>>>,
    used: AtomicU64,
}

impl std::fmt::Debug for MediaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCache")
            .field("root", &self.root)
            .field("max_bytes", &self.max_bytes)
            .field("used", &self.used.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl MediaCache {
    /// A cache of files under `root` (already canonicalized).
    pub fn new(root: PathBuf, settings: &MediaCacheSettings) -> Self {
        Self {
            root,
            max_bytes: settings.max_mb.saturating_mul(1 << 20),
            // a file that could never be kept must not be read whole for one answer either
            max_file_bytes: settings
                .max_file_mb
                .min(settings.max_mb)
                .saturating_mul(1 << 20),
            revalidate_ms: i64::try_from(settings.revalidate_ms).unwrap_or(i64::MAX),
            playlist_revalidate_ms: i64::try_from(settings.playlist_revalidate_ms)
                .unwrap_or(i64::MAX),
            epoch: Instant::now(),
            entries: RwLock::new(HashMap::new()),
            used: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Bytes held.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The answer to `method` with `headers` for `rel` (a path already checked segment by segment).
    pub async fn lookup(&self, rel: &str, method: &Method, headers: &HeaderMap) -> Lookup {
        match self.entry(rel).await {
            Ok(Some(entry)) => Lookup::Hit(respond(&entry, method, headers)),
            Ok(None) => Lookup::Bypass,
            Err(()) => Lookup::Missing,
        }
    }

    /// The bytes of `rel` (a path already checked segment by segment) from memory, for answers built
    /// from a file (playlists with key URIs, the personalized master playlist).
    pub async fn bytes(&self, rel: &str) -> Lookup<Bytes> {
        match self.entry(rel).await {
            Ok(Some(entry)) => Lookup::Hit(entry.body.clone()),
            Ok(None) => Lookup::Bypass,
            Err(()) => Lookup::Missing,
        }
    }

    /// The kept entry of `rel`, checked against the disk when due. `Ok(None)`: not kept (caching off,
    /// too large); `Err`: no such file.
    async fn entry(&self, rel: &str) -> Result<Option<Arc<Entry>>, ()> {
        if self.max_bytes == 0 {
            return Ok(None);
        }
        let now = self.now_ms();
        let kept = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(rel)
            .cloned();
        match kept {
            Some(e) if !self.claim_check(rel, &e, now) => Ok(Some(e)),
            kept => self.load(rel, kept, now).await,
        }
    }

    /// Whether this request re-checks `entry` against the disk: it is due, and no other request took the
    /// check (the others serve the kept copy meanwhile rather than all reading the file at once).
    fn claim_check(&self, rel: &str, entry: &Entry, now: i64) -> bool {
        let every = if rel.ends_with(".m3u8") {
            self.playlist_revalidate_ms
        } else {
            self.revalidate_ms
        };
        let seen = entry.checked_ms.load(Ordering::Relaxed);
        now - seen >= every
            && entry
                .checked_ms
                .compare_exchange(seen, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Resolves and checks `rel` on disk; keeps (or re-reads) it when it fits. `Ok(None)`: too large.
    async fn load(
        &self,
        rel: &str,
        kept: Option<Arc<Entry>>,
        now: i64,
    ) -> Result<Option<Arc<Entry>>, ()> {
        let root = self.root.clone();
        let path = root.join(rel);
        let max_file = self.max_file_bytes;
        let previous = kept.as_ref().map(|e| e.stamp);
        let read =
            tokio::task::spawn_blocking(move || read_checked(&root, &path, previous, max_file))
                .await
                .map_err(|_| ())?;
        let fresh = match read {
            Err(()) => {
                self.remove(rel);
                return Err(());
            }
            Ok(Read::TooLarge) => {
                self.remove(rel);
                return Ok(None);
            }
            Ok(Read::Unchanged) => {
                if let Some(e) = kept {
                    e.checked_ms.store(now, Ordering::Relaxed);
                    return Ok(Some(e));
                }
                return Err(());
            }
            Ok(Read::Fresh {
                body,
                stamp,
                modified,
            }) => Arc::new(Entry {
                etag: etag(&stamp),
                last_modified_header: modified
                    .and_then(|m| HeaderValue::from_str(&httpdate::fmt_http_date(m)).ok()),
                last_modified: modified,
                body,
                // a file that changed while it was read is checked again by the next request
                checked_ms: AtomicI64::new(if stamp.len == u64::MAX {
                    now.saturating_sub(self.revalidate_ms)
                } else {
                    now
                }),
                stamp,
            }),
        };
        self.insert(rel, Arc::clone(&fresh));
        Ok(Some(fresh))
    }

    fn remove(&self, rel: &str) {
        let old = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(rel);
        if let Some(old) = old {
            self.used
                .fetch_sub(old.body.len() as u64, Ordering::Relaxed);
        }
    }

    fn insert(&self, rel: &str, entry: Arc<Entry>) {
        let size = entry.body.len() as u64;
        if size > self.max_bytes {
            return;
        }
        let mut map = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = map.remove(rel) {
            self.used
                .fetch_sub(old.body.len() as u64, Ordering::Relaxed);
        }
        // evict in the map's (random) order until the new file fits
        while self.used.load(Ordering::Relaxed) + size > self.max_bytes {
            let Some(victim) = map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = map.remove(&victim) {
                self.used
                    .fetch_sub(old.body.len() as u64, Ordering::Relaxed);
            }
        }
        self.used.fetch_add(size, Ordering::Relaxed);
        map.insert(rel.into(), entry);
    }
}

enum Read {
    Unchanged,
    TooLarge,
    Fresh {
        body: Bytes,
        stamp: Stamp,
        modified: Option<SystemTime>,
    },
}

/// The origin's one confinement rule: `path` resolved (symlinks included) must be a regular file inside
/// `root` (the media folder, canonicalized once at start). `None`: missing, outside, or not a file.
pub fn confined(root: &Path, path: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
    let full = std::fs::canonicalize(path).ok()?;
    if !full.starts_with(root) {
        return None;
    }
    let meta = std::fs::metadata(&full).ok()?;
    meta.is_file().then_some((full, meta))
}

/// Resolves `path` (symlinks included) inside `root`, and reads it unless it is a regular file with the
/// `previous` stamp or larger than `max_file`. `Err`: missing, outside the root, or not a regular file.
fn read_checked(
    root: &Path,
    path: &Path,
    previous: Option<Stamp>,
    max_file: u64,
) -> Result<Read, ()> {
    let (full, meta) = confined(root, path).ok_or(())?;
    let stamp = Stamp::of(&meta);
    if previous == Some(stamp) {
        return Ok(Read::Unchanged);
    }
    if stamp.len > max_file {
        return Ok(Read::TooLarge);
    }
    let body = std::fs::read(&full).map_err(|_| ())?;
    // a file rewritten between the stat and the read: keep what was read, stamped as unknown, so the
    // next check reads it again
    let stamp = if body.len() as u64 == stamp.len {
        stamp
    } else {
        Stamp {
            len: u64::MAX,
            ..stamp
        }
    };
    Ok(Read::Fresh {
        body: Bytes::from(body),
        stamp,
        modified: meta.modified().ok(),
    })
}

fn etag(stamp: &Stamp) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "\"{:x}-{:x}-{:x}\"",
        stamp.ino, stamp.len, stamp.mtime_ns
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, RFC 9110 13.1.2).
fn none_match(list: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.trim() == "*" || list.split(',').any(|t| bare(t) == bare(etag))
}

/// The answer from a kept file.
fn respond(entry: &Entry, method: &Method, headers: &HeaderMap) -> Response {
    let len = entry.body.len() as u64;
    let etag = entry.etag.to_str().unwrap_or_default();
    let not_modified = match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(list) => none_match(list, etag),
        None => match (
            headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
            entry.last_modified,
        ) {
            (Some(since), Some(modified)) => truncate_s(modified) <= since,
            _ => false,
        },
    };
    let mut res = Response::new(Body::empty());
    let h = res.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, entry.etag.clone());
    if let Some(lm) = &entry.last_modified_header {
        h.insert(header::LAST_MODIFIED, lm.clone());
    }
    if not_modified {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_holds(headers, entry, etag));
    let (status, body) = match range.map(|r| single_range(r, len)) {
        None | Some(RangeAnswer::Whole) => (StatusCode::OK, entry.body.clone()),
        Some(RangeAnswer::Part(start, end)) => {
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {start}-{end}/{len}")),
            );
            (
                StatusCode::PARTIAL_CONTENT,
                entry.body.slice(to_usize(start)..=to_usize(end)),
            )
        }
        Some(RangeAnswer::Unsatisfiable) => {
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes */{len}")),
            );
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            return res;
        }
    };
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if method != Method::HEAD {
        *res.body_mut() = Body::from(body);
    }
    res
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// HTTP dates have whole seconds.
fn truncate_s(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(d.as_secs()),
        Err(_) => t,
    }
}

/// `If-Range`: the range applies only while the file is the one the client names (else the whole file).
fn if_range_holds(headers: &HeaderMap, entry: &Entry, etag: &str) -> bool {
    let Some(v) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    if v.starts_with('"') {
        return v == etag;
    }
    match (httpdate::parse_http_date(v).ok(), entry.last_modified) {
        (Some(date), Some(modified)) => truncate_s(modified) == date,
        _ => false,
    }
}

enum RangeAnswer {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One byte range of a `len`-byte file, parsed and checked by `http-range-header` (the parser
/// `tower-http`'s `ServeFile` uses); several ranges are answered with the whole file.
fn single_range(value: &str, len: u64) -> RangeAnswer {
    if len == 0 {
        // no byte of an empty file can be asked for (and the parser would make `0-0` of `bytes=0-`)
        return RangeAnswer::Unsatisfiable;
    }
    let Ok(parsed) = http_range_header::parse_range_header(value) else {
        // not a bytes range we understand: RFC 9110 says ignore the header
        return RangeAnswer::Whole;
    };
    match parsed.validate(len) {
        Ok(ranges) if ranges.len() == 1 => RangeAnswer::Part(*ranges[0].start(), *ranges[0].end()),
        Ok(_) => RangeAnswer::Whole,
        Err(_) => RangeAnswer::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, max_mb: u64) -> MediaCache {
        MediaCache::new(
            dir.canonicalize().unwrap(),
            &MediaCacheSettings {
                max_mb,
                max_file_mb: 1,
                revalidate_ms: 0,
                playlist_revalidate_ms: 0,
            },
        )
    }

    async fn get(c: &MediaCache, rel: &str, headers: &[(&str, &str)]) -> Option<Response> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        match c.lookup(rel, &Method::GET, &h).await {
            Lookup::Hit(r) => Some(r),
            Lookup::Bypass => None,
            Lookup::Missing => panic!("{rel} missing"),
        }
    }

    async fn body(r: Response) -> Vec<u8> {
        axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn ranges_conditionals_and_changes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("a.ts"), &data).unwrap();
        let c = cache(dir.path(), 1);
        let r = get(&c, "a.ts", &[]).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(body(r).await, data);
        let r = get(&c, "a.ts", &[("range", "bytes=100-299")])
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 100-299/1000");
        assert_eq!(body(r).await, &data[100..300]);
        let r = get(&c, "a.ts", &[("range", "bytes=-10")]).await.unwrap();
        assert_eq!(body(r).await, &data[990..]);
        let r = get(&c, "a.ts", &[("range", "bytes=5000-")]).await.unwrap();
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */1000");
        let r = get(&c, "a.ts", &[("range", "bytes=0-1,5-6")])
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = get(&c, "a.ts", &[("if-none-match", &etag)]).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = get(
            &c,
            "a.ts",
            &[("range", "bytes=0-9"), ("if-range", "\"other\"")],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        // a rewritten file is read again (revalidate_ms = 0 here)
        std::fs::write(dir.path().join("a.ts"), b"new").unwrap();
        let r = get(&c, "a.ts", &[]).await.unwrap();
        assert_eq!(body(r).await, b"new");
        assert_eq!(c.used_bytes(), 3);
        // a removed file is gone, and its memory with it
        std::fs::remove_file(dir.path().join("a.ts")).unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert!(matches!(
            c.lookup("a.ts", &Method::GET, &h).await,
            Lookup::Missing
        ));
        assert_eq!(c.used_bytes(), 0);
    }

    #[tokio::test]
    async fn a_playlist_is_kept_and_read_again_after_its_own_period() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let c = MediaCache::new(
            root.clone(),
            &MediaCacheSettings {
                max_mb: 1,
                max_file_mb: 1,
                revalidate_ms: 3_600_000,
                playlist_revalidate_ms: 300,
            },
        );
        let text = |l: Lookup<Bytes>| match l {
            Lookup::Hit(b) => String::from_utf8(b.to_vec()).unwrap(),
            Lookup::Bypass => panic!("not kept"),
            Lookup::Missing => panic!("missing"),
        };
        std::fs::write(root.join("live.m3u8"), "#EXTM3U\nseg1.ts\n").unwrap();
        assert_eq!(text(c.bytes("live.m3u8").await), "#EXTM3U\nseg1.ts\n");
        // a live playlist gains a segment: served from memory until its period is over, then read again
        std::fs::write(root.join("live.m3u8"), "#EXTM3U\nseg1.ts\nseg2.ts\n").unwrap();
        assert_eq!(text(c.bytes("live.m3u8").await), "#EXTM3U\nseg1.ts\n");
        let r = get(&c, "live.m3u8", &[]).await.unwrap();
        assert_eq!(body(r).await, b"#EXTM3U\nseg1.ts\n");
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert_eq!(
            text(c.bytes("live.m3u8").await),
            "#EXTM3U\nseg1.ts\nseg2.ts\n"
        );
        let r = get(&c, "live.m3u8", &[]).await.unwrap();
        assert_eq!(body(r).await, b"#EXTM3U\nseg1.ts\nseg2.ts\n");
        // segments keep their own (here, hour-long) period
        std::fs::write(root.join("s.ts"), b"one").unwrap();
        assert_eq!(text(c.bytes("s.ts").await), "one");
        std::fs::write(root.join("s.ts"), b"two!").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert_eq!(text(c.bytes("s.ts").await), "one");
        std::fs::remove_file(root.join("live.m3u8")).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(350)).await;
        assert!(matches!(c.bytes("live.m3u8").await, Lookup::Missing));
    }

    #[tokio::test]
    async fn an_empty_file_answers_ranges_with_416() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty.ts"), b"").unwrap();
        let c = cache(dir.path(), 1);
        for range in ["bytes=0-", "bytes=0-10", "bytes=-5"] {
            let r = get(&c, "empty.ts", &[("range", range)]).await.unwrap();
            assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes */0");
        }
        let r = get(&c, "empty.ts", &[]).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "0");
    }

    #[tokio::test]
    async fn bounded_and_confined() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir(&media).unwrap();
        for i in 0..6 {
            std::fs::write(media.join(format!("{i}.ts")), vec![0u8; 300 * 1024]).unwrap();
        }
        std::fs::write(media.join("big.ts"), vec![0u8; 2 << 20]).unwrap();
        std::fs::write(media.join("p.m3u8"), b"#EXTM3U\n").unwrap();
        std::fs::write(dir.path().join("secret.ts"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.ts"), media.join("link.ts")).unwrap();
        let c = cache(&media, 1);
        for i in 0..6 {
            assert!(get(&c, &format!("{i}.ts"), &[]).await.is_some());
            assert!(c.used_bytes() <= 1 << 20, "{} bytes kept", c.used_bytes());
        }
        assert!(
            get(&c, "big.ts", &[]).await.is_none(),
            "too large: from disk"
        );
        // playlists are kept too (checked again every playlist_revalidate_ms)
        let r = get(&c, "p.m3u8", &[]).await.expect("a playlist is kept");
        assert_eq!(body(r).await, b"#EXTM3U\n");
        assert!(matches!(
            c.lookup("link.ts", &Method::GET, &HeaderMap::new()).await,
            Lookup::Missing
        ));
        assert!(matches!(
            c.lookup("nope.ts", &Method::GET, &HeaderMap::new()).await,
            Lookup::Missing
        ));
        let head = c.lookup("0.ts", &Method::HEAD, &HeaderMap::new()).await;
        let Lookup::Hit(r) = head else { panic!() };
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "307200");
        assert!(body(r).await.is_empty());
    }
}
