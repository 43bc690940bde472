//! The three ways a new database arrives, each checked before the swap: the file changes on disk, an
//! admin uploads one, or the schedule downloads one.
//!
//! The file is watched by polling its identity (device, inode, size, modification time) every
//! `poll_interval`, which catches an in-place write as well as the atomic rename `geoipupdate` does, with
//! no platform watcher to go stale when the directory entry is replaced. A file seen half-written is
//! refused (its metadata section is at the end) and read again once its identity changes.
//!
//! Uploads and downloads are written to the configured path (a temporary file, fsync, rename) after they
//! passed the check, so a restart finds them; the watcher then recognises its own write.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::db::{LoadError, Source};
use crate::live::{GeoIp, Reloaded};

/// Where and how often to download a database.
#[derive(Debug, Clone)]
pub struct DownloadSettings {
    /// The URL of a raw `.mmdb` file (it may hold a licence key in its query; logs and status omit it).
    pub url: String,
    /// The SHA-256 the file must have (hex), when pinned.
    pub sha256: Option<String>,
    /// A URL whose answer starts with the file's SHA-256 in hex (as `sha256sum` prints it), when published.
    pub sha256_url: Option<String>,
    /// Time between downloads.
    pub interval: Duration,
    /// Time between attempts after a failed one (at most `interval`).
    pub retry: Duration,
    /// Longest a download may take.
    pub timeout: Duration,
}

/// How the database is kept up to date.
#[derive(Debug, Clone)]
pub struct UpdateSettings {
    /// The database file: loaded at start, watched, and where uploads and downloads are kept.
    pub path: Option<PathBuf>,
    /// How often the file is checked for changes (`None`: never).
    pub poll_interval: Option<Duration>,
    /// The schedule, when one is configured.
    pub download: Option<DownloadSettings>,
    /// Largest database accepted from an upload or a download, in bytes.
    pub max_bytes: u64,
}

/// A file's identity: when it changes, the file is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0, 0);
    Some(FileStamp {
        dev,
        ino,
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// A URL as logs and the status page show it: no user information, no query (licence keys live there).
pub fn redact_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = host.rsplit('@').next().unwrap_or(host);
            format!("{scheme}://{host}{path}")
        }
        None => no_query.to_owned(),
    }
}

/// Keeps one [`GeoIp`] up to date.
#[derive(Debug)]
pub struct GeoUpdater {
    geo: Arc<GeoIp>,
    settings: UpdateSettings,
    client: reqwest::Client,
    seen: Mutex<Option<FileStamp>>,
}

fn io(e: impl std::fmt::Display) -> LoadError {
    LoadError::Io(e.to_string())
}

impl GeoUpdater {
    /// An updater for `geo`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots, for instance).
    pub fn new(geo: Arc<GeoIp>, settings: UpdateSettings) -> Result<Self, LoadError> {
        let timeout = settings
            .download
            .as_ref()
            .map_or(Duration::from_secs(300), |d| d.timeout);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .user_agent(concat!("usher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| io(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            geo,
            settings,
            client,
            seen: Mutex::new(None),
        })
    }

    /// The database this updater keeps.
    pub fn geo(&self) -> &Arc<GeoIp> {
        &self.geo
    }

    /// The settings.
    pub fn settings(&self) -> &UpdateSettings {
        &self.settings
    }

    fn note_seen(&self, s: Option<FileStamp>) {
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = s;
    }

    fn last_seen(&self) -> Option<FileStamp> {
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn load(&self, bytes: Vec<u8>, source: Source) -> Result<Reloaded, LoadError> {
        let geo = self.geo.clone();
        tokio::task::spawn_blocking(move || geo.load(bytes, source))
            .await
            .map_err(|e| io(format!("the check task failed: {e}")))?
    }

    /// Reads the configured file again, now.
    ///
    /// # Errors
    /// [`LoadError::Unconfigured`] without `geoip.path`; [`LoadError::Io`] when it cannot be read;
    /// [`LoadError::Invalid`] when it is refused (the database serving stays).
    pub async fn reload_file(&self) -> Result<Reloaded, LoadError> {
        let path = self
            .settings
            .path
            .clone()
            .ok_or(LoadError::Unconfigured("geoip.path"))?;
        let source = Source::File {
            path: path.display().to_string(),
        };
        let before = stamp(&path);
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || std::fs::read(&path))
                .await
                .map_err(io)?
        };
        // remember what was read, good or bad, so the watcher does not read the same file again
        self.note_seen(before);
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                let e = io(format!("cannot read {}: {e}", path.display()));
                self.geo.failed(source, &e);
                return Err(e);
            }
        };
        self.load(bytes, source).await
    }

    /// Checks an uploaded database, swaps it in and keeps it at the configured path.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] when it is refused (the database serving stays).
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<Reloaded, LoadError> {
        self.accept(bytes, Source::Upload).await
    }

    async fn accept(&self, bytes: Vec<u8>, source: Source) -> Result<Reloaded, LoadError> {
        let keep = self
            .settings
            .path
            .as_ref()
            .map(|p| (p.clone(), bytes.clone()));
        let outcome = self.load(bytes, source).await?;
        if let Some((path, bytes)) = keep
            && outcome == Reloaded::Swapped
        {
            let written = tokio::task::spawn_blocking({
                let path = path.clone();
                move || write_atomically(&path, &bytes)
            })
            .await
            .map_err(io)
            .and_then(|r| r.map_err(io));
            match written {
                Ok(()) => self.note_seen(stamp(&path)),
                Err(e) => tracing::warn!(
                    geoip.path = %path.display(),
                    error = %e,
                    "the new GeoIP database serves but could not be kept on disk; a restart will load the old file"
                ),
            }
        }
        Ok(outcome)
    }

    /// Downloads the database from the configured URL now, checks it (and its SHA-256 when configured) and
    /// swaps it in.
    ///
    /// # Errors
    /// [`LoadError::Unconfigured`] without `geoip.download_url`; [`LoadError::Io`] when the download
    /// fails; [`LoadError::Invalid`] when the file or its checksum is refused.
    pub async fn download(&self) -> Result<Reloaded, LoadError> {
        let d = self
            .settings
            .download
            .clone()
            .ok_or(LoadError::Unconfigured("geoip.download_url"))?;
        let source = Source::Download {
            url: redact_url(&d.url),
        };
        let fetched = async {
            let bytes = self.fetch(&d.url).await?;
            let expected = match (&d.sha256, &d.sha256_url) {
                (Some(h), _) => Some(h.to_ascii_lowercase()),
                (None, Some(u)) => Some(self.published_sha256(u).await?),
                (None, None) => None,
            };
            if let Some(expected) = expected {
                let got = hex::encode(Sha256::digest(&bytes));
                if got != expected {
                    return Err(LoadError::Invalid(format!(
                        "SHA-256 mismatch: expected {expected}, the download has {got}"
                    )));
                }
            }
            Ok(bytes)
        }
        .await;
        match fetched {
            Ok(bytes) => self.accept(bytes, source).await,
            Err(e) => {
                self.geo.failed(source, &e);
                Err(e)
            }
        }
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, LoadError> {
        let shown = redact_url(url);
        let mut res = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| io(format!("downloading {shown}: {}", e.without_url())))?;
        if !res.status().is_success() {
            return Err(io(format!("downloading {shown}: HTTP {}", res.status())));
        }
        let max = self.settings.max_bytes;
        if res.content_length().is_some_and(|n| n > max) {
            return Err(LoadError::Invalid(format!(
                "the download is larger than {max} bytes (geoip.max_bytes)"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| io(format!("downloading {shown}: {}", e.without_url())))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > max {
                return Err(LoadError::Invalid(format!(
                    "the download is larger than {max} bytes (geoip.max_bytes)"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    async fn published_sha256(&self, url: &str) -> Result<String, LoadError> {
        let text = self.fetch(url).await?;
        let first = String::from_utf8_lossy(&text)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if first.len() == 64 && first.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(first)
        } else {
            Err(LoadError::Invalid(format!(
                "{} does not start with a SHA-256 in hex",
                redact_url(url)
            )))
        }
    }

    /// Loads the configured file, if there is one, before the server takes requests. A missing or refused
    /// file is logged and shown in the status; the server starts anyway (shows with Geo rules then keep
    /// `/readyz` at 503 until a database arrives).
    pub async fn load_at_start(&self) {
        if let Some(path) = &self.settings.path {
            if path.exists() {
                let _ = self.reload_file().await;
            } else {
                tracing::warn!(geoip.path = %path.display(), "no GeoIP database file yet");
            }
        }
    }

    /// Watches the file and runs the download schedule until `cancel` fires.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let poll = self
            .settings
            .poll_interval
            .filter(|_| self.settings.path.is_some());
        let download = self.settings.download.clone();
        let mut next_poll = tokio::time::Instant::now() + poll.unwrap_or(Duration::MAX / 4);
        let mut next_download = match &download {
            // nothing to serve yet: fetch at once; else on the schedule
            Some(_) if !self.geo.is_loaded() => tokio::time::Instant::now(),
            Some(d) => tokio::time::Instant::now() + d.interval,
            None => tokio::time::Instant::now() + Duration::MAX / 4,
        };
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep_until(next_poll), if poll.is_some() => {
                    self.check_file().await;
                    next_poll = tokio::time::Instant::now() + poll.unwrap_or(Duration::MAX / 4);
                }
                () = tokio::time::sleep_until(next_download), if download.is_some() => {
                    let wait = match (self.download().await, &download) {
                        (Ok(_), Some(d)) => d.interval,
                        (Err(_), Some(d)) => d.retry.min(d.interval),
                        (_, None) => Duration::MAX / 4,
                    };
                    next_download = tokio::time::Instant::now() + wait;
                }
            }
        }
    }

    /// Reads the file again when its identity changed since it was last read.
    pub async fn check_file(&self) {
        let Some(path) = &self.settings.path else {
            return;
        };
        let now = stamp(path);
        if now.is_some() && now != self.last_seen() {
            let _ = self.reload_file().await;
        }
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_keys_and_credentials() {
        assert_eq!(
            redact_url(
                "https://download.example.com/app/geoip_download?edition_id=GeoLite2-Country&license_key=SECRET&suffix=mmdb"
            ),
            "https://download.example.com/app/geoip_download"
        );
        assert_eq!(
            redact_url("https://user:pw@example.com/db.mmdb"),
            "https://example.com/db.mmdb"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/x.mmdb#frag"),
            "http://127.0.0.1:8080/x.mmdb"
        );
    }
}
