//! The records of this node's uploads: one folder per upload under `uploads.dir` (`data`, the bytes;
//! `upload.json`, the record, replaced by a rename), the per-upload locks, the job queue and the running
//! jobs' progress. Nothing here knows the application state; [`super`] and [`super::jobs`] act on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use usher_core::admin::Actor;

use crate::service::{Error, Result};
use crate::settings::UploadSettings;

/// Where an upload and its packaging job are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Bytes are still arriving.
    Uploading,
    /// Complete, waiting for a free packaging slot (`uploads.concurrency`).
    Queued,
    /// ffprobe reads the file.
    Probing,
    /// ffmpeg encodes (and encrypts) the ladder.
    Packaging,
    /// The ladder is in the media folder and the show streams from it.
    Done,
    /// Packaging failed (`error` says why); nothing was left in the media folder.
    Failed,
}

impl JobState {
    /// Its name in answers and pages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Queued => "queued",
            Self::Probing => "probing",
            Self::Packaging => "packaging",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Whether a job works on the upload now.
    pub fn running(self) -> bool {
        matches!(self, Self::Probing | Self::Packaging)
    }
}

/// An upload and its packaging job, as `upload.json` keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    /// `up_` and 32 hex digits.
    pub id: String,
    /// The show the video is for.
    pub show_id: String,
    /// The file's name as the client gave it.
    pub filename: String,
    /// Its full length in bytes (`Upload-Length`).
    pub length: u64,
    /// Who uploaded it.
    pub actor: Actor,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Its last change (a byte received, a job step).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Where it is.
    pub state: JobState,
    /// Packaging progress, 0–100.
    pub percent: u8,
    /// Why packaging failed.
    pub error: Option<String>,
    /// The stream folder made (the show's `stream_path` since).
    pub stream_path: Option<String>,
    /// The renditions made (`1080p`, `720p`, …).
    #[serde(default)]
    pub renditions: Vec<String>,
    /// Packaging runs begun (a restart requeues a run it interrupted, at most three times).
    #[serde(default)]
    pub attempts: u32,
    /// Bytes received: the length of `data` (not stored: the file says it).
    #[serde(skip)]
    pub offset: u64,
}

impl Upload {
    /// When an unfinished upload (or a finished record) expires, `expiry_s` after its last change.
    pub fn expires_at(&self, expiry_s: u64) -> OffsetDateTime {
        self.updated_at + Duration::from_secs(expiry_s)
    }
}

/// This node's uploads: the folder, the locks, the job queue and the jobs' live progress.
pub struct Uploads {
    settings: UploadSettings,
    dir: PathBuf,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    queue: mpsc::UnboundedSender<String>,
    inbox: std::sync::Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    progress: std::sync::Mutex<HashMap<String, u8>>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").field("dir", &self.dir).finish()
    }
}

impl Uploads {
    /// The uploads of `settings` in `dir` (made when uploads are enabled).
    ///
    /// # Errors
    /// When the folder cannot be made.
    pub fn new(settings: UploadSettings, dir: PathBuf) -> std::io::Result<Self> {
        if settings.enabled {
            std::fs::create_dir_all(&dir)?;
        }
        let (queue, inbox) = mpsc::unbounded_channel();
        Ok(Self {
            settings,
            dir,
            locks: std::sync::Mutex::default(),
            queue,
            inbox: std::sync::Mutex::new(Some(inbox)),
            progress: std::sync::Mutex::default(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &UploadSettings {
        &self.settings
    }

    pub(crate) fn folder(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub(crate) fn lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn forget(&self, id: &str) {
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        self.set_progress(id, None);
    }

    pub(crate) fn set_progress(&self, id: &str, pct: Option<u8>) {
        let mut p = self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match pct {
            Some(v) => {
                p.insert(id.to_owned(), v);
            }
            None => {
                p.remove(id);
            }
        }
    }

    pub(crate) fn live_progress(&self, id: &str) -> Option<u8> {
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// Reads an upload's record and offset; `None` when there is none.
    pub(crate) async fn read(&self, id: &str) -> Result<Option<Upload>> {
        let folder = self.folder(id);
        let text = match tokio::fs::read(folder.join("upload.json")).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Internal(format!("reading upload {id}: {e}"))),
        };
        let mut up: Upload = serde_json::from_slice(&text)
            .map_err(|e| Error::Internal(format!("upload {id}'s record: {e}")))?;
        up.offset = match tokio::fs::metadata(folder.join("data")).await {
            Ok(m) => m.len(),
            // every byte had arrived before a job ended and deleted them
            Err(_) if up.state != JobState::Uploading => up.length,
            Err(_) => 0,
        };
        if up.state.running()
            && let Some(p) = self.live_progress(id)
        {
            up.percent = p;
        }
        Ok(Some(up))
    }

    /// Writes an upload's record (a temporary file renamed over the old one).
    pub(crate) async fn write(&self, up: &Upload) -> Result<()> {
        let folder = self.folder(&up.id);
        let tmp = folder.join("upload.json.tmp");
        let text = serde_json::to_vec_pretty(up)
            .map_err(|e| Error::Internal(format!("encoding upload {}: {e}", up.id)))?;
        let io = async {
            tokio::fs::write(&tmp, &text).await?;
            tokio::fs::rename(&tmp, folder.join("upload.json")).await
        };
        io.await
            .map_err(|e| Error::Internal(format!("writing upload {}: {e}", up.id)))
    }

    /// Every upload on this node, newest first.
    pub(crate) async fn all(&self) -> Result<Vec<Upload>> {
        let mut out = Vec::new();
        let mut dir = match tokio::fs::read_dir(&self.dir).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::Internal(format!("reading the uploads folder: {e}"))),
        };
        while let Ok(Some(entry)) = dir.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if valid_id(&name)
                && let Ok(Some(up)) = self.read(&name).await
            {
                out.push(up);
            }
        }
        out.sort_by_key(|u| std::cmp::Reverse(u.created_at));
        Ok(out)
    }
}

/// Whether `id` looks like an upload id (`up_` + 32 lowercase hex digits): anything else names no folder.
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == 35
        && id.starts_with("up_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Uploads {
    /// Queues a complete upload's packaging job.
    pub(crate) fn enqueue(&self, id: &str) {
        let _ = self.queue.send(id.to_owned());
    }

    /// The queue's receiving end, once (for the job runner).
    pub(crate) fn take_inbox(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        self.inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}
