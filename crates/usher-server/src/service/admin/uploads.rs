//! Uploads of on-demand video (the tus 1.0 protocol's core, creation and termination, spoken by
//! `http/uploads.rs` and the console) and the packaging jobs they start ([`jobs`]).
//!
//! An upload lives in a folder of its own under `uploads.dir`: `data` (the bytes received so far, whose
//! length is the upload's offset, so an interrupted `PATCH` leaves a valid resume point) and
//! `upload.json` (its record and its job's state, replaced atomically by a rename). Records stay on the
//! node's disk beside the bytes they describe rather than in the store: the bytes cannot leave the node
//! that received them, the job that reads them runs there, and the record lives and dies with them (an
//! expired upload is one folder to delete). A request for an upload must therefore reach the node that
//! holds it (one node, or sticky routing of `/api/v1/uploads`).
//!
//! One lock per upload: a `PATCH` holds it while it writes and a job while it runs, so a second `PATCH`,
//! or a `DELETE` during packaging, is refused (423 `upload_busy`) rather than interleaved.

pub mod jobs;
mod records;

use records::valid_id;
pub use records::{JobState, Upload, Uploads};

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;
use usher_core::admin::{Actor, Permission};
use usher_core::ids::ShowId;

use crate::service::{Caller, Error, Record, Result, audit};
use crate::state::AppState;

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The tus extensions supported.
pub const TUS_EXTENSIONS: &str = "creation,termination";
/// The content type of a `PATCH` body.
pub const PATCH_TYPE: &str = "application/offset+octet-stream";
/// Longest wait for the next part of a `PATCH` body before the request is given up (what arrived stays).
const STALL: Duration = Duration::from_secs(60);
/// File names (by extension) an upload may carry.
const EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv"];
/// Content types (`filetype` metadata) an upload may declare.
const TYPES: &[&str] = &[
    "video/mp4",
    "video/quicktime",
    "video/x-matroska",
    "video/matroska",
    "application/octet-stream",
    "",
];

fn uploads(state: &AppState) -> Result<&Uploads> {
    if state.uploads.settings().enabled {
        Ok(&state.uploads)
    } else {
        Err(Error::UploadsDisabled)
    }
}

/// Refuses a `Tus-Resumable` naming another version than 1.0.0 (412), and one that names no version at
/// all (400); a request without one (or with an empty one) is taken: plain HTTP clients can resume too.
fn check_version(tus: Option<&str>) -> Result<()> {
    let v = tus.map(str::trim).unwrap_or("");
    if v.is_empty() || v == TUS_VERSION {
        return Ok(());
    }
    let parts: Vec<&str> = v.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        Err(Error::TusVersionUnsupported)
    } else {
        Err(Error::InvalidRequest(
            "Tus-Resumable must be a version such as 1.0.0".into(),
        ))
    }
}

/// Reads tus `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone has no value).
fn metadata(text: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| {
                Error::InvalidRequest(format!("Upload-Metadata: `{key}` is not base64"))
            })?;
        let value = String::from_utf8(bytes)
            .map_err(|_| Error::InvalidRequest(format!("Upload-Metadata: `{key}` is not UTF-8")))?;
        out.insert(key.to_owned(), value);
    }
    Ok(out)
}

/// What a creation request (`POST /api/v1/uploads`) carries.
#[derive(Debug, Default)]
pub struct NewUpload<'a> {
    /// `Tus-Resumable`.
    pub tus: Option<&'a str>,
    /// `Upload-Length`.
    pub length: Option<&'a str>,
    /// `Upload-Defer-Length` (not supported).
    pub defer_length: bool,
    /// `Upload-Metadata`: `show_id` (required), `filename`, `filetype`.
    pub metadata: Option<&'a str>,
    /// The request's `Content-Length` (a creation carries no body: creation-with-upload is not offered).
    pub body_length: u64,
}

/// Creates an upload for a show.
///
/// # Errors
/// `uploads_disabled`; `tus_version_unsupported`; `invalid_request` (no or a bad `Upload-Length`, bad
/// metadata, no `show_id`); `show_unknown`; `unsupported_media_type` for a file name or type that is not
/// MP4, MOV or MKV; `payload_too_large` past `uploads.max_bytes`; `forbidden`.
pub async fn create_upload(
    state: &AppState,
    caller: &Caller,
    req: NewUpload<'_>,
) -> Result<Upload> {
    caller.require(Permission::Manage)?;
    let ups = uploads(state)?;
    if req.defer_length {
        return Err(Error::InvalidRequest(
            "Upload-Defer-Length is not supported: send Upload-Length".into(),
        ));
    }
    if req.body_length > 0 {
        return Err(Error::InvalidRequest(
            "the creation request carries no body: send the bytes with PATCH".into(),
        ));
    }
    let length: u64 = req
        .length
        .ok_or_else(|| Error::InvalidRequest("Upload-Length is required".into()))?
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            Error::InvalidRequest("Upload-Length must be a whole number of bytes".into())
        })?;
    let meta = metadata(req.metadata.unwrap_or(""))?;
    let show_id = meta.get("show_id").ok_or_else(|| {
        Error::InvalidRequest("Upload-Metadata must name the show: show_id".into())
    })?;
    // the request is well-formed: now whether this server takes it
    check_version(req.tus)?;
    if length > ups.settings().max_bytes {
        return Err(Error::PayloadTooLarge);
    }
    let show_id = ShowId::parse(show_id).map_err(|_| Error::NotFound(Record::Show))?;
    if state.store.show(&show_id).await?.is_none() {
        return Err(Error::NotFound(Record::Show));
    }
    let filename: String = meta
        .get("filename")
        .or_else(|| meta.get("name"))
        .map_or("upload", String::as_str)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if meta.contains_key("filename") || meta.contains_key("name") {
        let ext = Path::new(&filename)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if !EXTENSIONS.contains(&ext.as_str()) {
            return Err(Error::UploadType(format!(
                "`{filename}`: upload an MP4, MOV or MKV file (.mp4, .m4v, .mov, .mkv)"
            )));
        }
    }
    if let Some(t) = meta.get("filetype").or_else(|| meta.get("type"))
        && !TYPES.contains(&t.to_ascii_lowercase().as_str())
    {
        return Err(Error::UploadType(format!(
            "`{t}`: upload an MP4, MOV or MKV file (video/mp4, video/quicktime, video/x-matroska)"
        )));
    }
    let id = format!("up_{}", usher_core::ids::random_hex(16));
    let now = OffsetDateTime::now_utc();
    let mut up = Upload {
        id: id.clone(),
        show_id: show_id.to_string(),
        filename,
        length,
        actor: caller.actor(),
        created_at: now,
        updated_at: now,
        state: JobState::Uploading,
        percent: 0,
        error: None,
        stream_path: None,
        renditions: Vec::new(),
        attempts: 0,
        offset: 0,
    };
    let folder = ups.folder(&id);
    let made = async {
        tokio::fs::create_dir_all(&folder).await?;
        tokio::fs::File::create(folder.join("data")).await.map(drop)
    };
    made.await
        .map_err(|e| Error::Internal(format!("making upload {id}: {e}")))?;
    if length == 0 {
        // nothing to wait for: the job says what is wrong with an empty file
        up.state = JobState::Queued;
    }
    ups.write(&up).await?;
    tracing::info!(upload.id = %id, show.id = %up.show_id, upload.length = length, "upload created");
    audit::record(
        state,
        caller,
        "upload.create",
        &format!("upload:{id}"),
        &format!("show={} length={length} file={}", up.show_id, up.filename),
    )
    .await;
    if up.state == JobState::Queued {
        ups.enqueue(&id);
    }
    Ok(up)
}

/// An upload's record, offset and job state.
///
/// # Errors
/// `uploads_disabled`, `upload_unknown`; `forbidden`.
pub async fn find_upload(state: &AppState, caller: &Caller, id: &str) -> Result<Upload> {
    caller.require(Permission::Read)?;
    let ups = uploads(state)?;
    if !valid_id(id) {
        return Err(Error::NotFound(Record::Upload));
    }
    ups.read(id).await?.ok_or(Error::NotFound(Record::Upload))
}

/// Every upload on this node, newest first.
///
/// # Errors
/// `uploads_disabled`; `forbidden`.
pub async fn list_uploads(state: &AppState, caller: &Caller) -> Result<Vec<Upload>> {
    caller.require(Permission::Read)?;
    uploads(state)?.all().await
}

/// The parts of a `PATCH` body, as they arrive (the HTTP body, without its types).
pub trait Chunks: Send {
    /// One part of the body.
    type Chunk: AsRef<[u8]> + Send;
    /// The next part; `None` at the end.
    fn next_chunk(&mut self) -> impl Future<Output = Option<std::io::Result<Self::Chunk>>> + Send;
}

/// What a `PATCH` carries besides its body.
#[derive(Debug, Default)]
pub struct Append<'a> {
    /// `Tus-Resumable`.
    pub tus: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `Upload-Offset`.
    pub offset: Option<&'a str>,
    /// `Content-Length`, when sent.
    pub content_length: Option<u64>,
}

/// Appends a `PATCH` body to an upload at its offset, streaming it to disk; a complete upload is
/// queued for packaging. What arrived before a broken-off body stays (the next `HEAD` says how much).
///
/// # Errors
/// `uploads_disabled`; `tus_version_unsupported`; `unsupported_media_type` for a body that is not
/// `application/offset+octet-stream`; `invalid_request` (no or a bad `Upload-Offset`, a body that broke
/// off); `upload_unknown`; `upload_busy` while another request writes it or its job runs;
/// `upload_offset_mismatch` when `Upload-Offset` is not the upload's offset (or it is complete);
/// `payload_too_large` for bytes past `Upload-Length` (nothing of that `PATCH` is kept); `forbidden`.
pub async fn append_upload(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: Append<'_>,
    mut body: impl Chunks,
) -> Result<Upload> {
    caller.require(Permission::Manage)?;
    let ups = uploads(state)?;
    let ctype = req
        .content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if ctype.as_deref() != Some(PATCH_TYPE) {
        return Err(Error::UploadType(format!(
            "a PATCH body must be {PATCH_TYPE}"
        )));
    }
    let offset: u64 = req
        .offset
        .ok_or_else(|| Error::InvalidRequest("Upload-Offset is required".into()))?
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| {
            Error::InvalidRequest("Upload-Offset must be a whole number of bytes".into())
        })?;
    check_version(req.tus)?;
    if !valid_id(id) {
        return Err(Error::NotFound(Record::Upload));
    }
    let lock = ups.lock(id);
    let Ok(_guard) = lock.try_lock() else {
        return Err(Error::UploadBusy(
            "another request is writing this upload, or its packaging job runs",
        ));
    };
    let mut up = ups.read(id).await?.ok_or(Error::NotFound(Record::Upload))?;
    if up.state != JobState::Uploading || offset != up.offset {
        return Err(Error::UploadOffsetMismatch {
            expected: up.offset,
        });
    }
    if req
        .content_length
        .is_some_and(|n| offset.saturating_add(n) > up.length)
    {
        return Err(Error::PayloadTooLarge);
    }
    let path = ups.folder(id).join("data");
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(|e| Error::Internal(format!("opening upload {id}: {e}")))?;
    let mut at = offset;
    let mut broke = None;
    loop {
        let next = match tokio::time::timeout(STALL, body.next_chunk()).await {
            Ok(Some(Ok(c))) => c,
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                broke = Some(format!("the body broke off: {e}"));
                break;
            }
            Err(_) => {
                broke = Some(format!("no byte for {} s", STALL.as_secs()));
                break;
            }
        };
        let bytes = next.as_ref();
        if at + bytes.len() as u64 > up.length {
            // past Upload-Length: this PATCH is dropped whole, the upload stays where it was
            drop(file);
            truncate(&path, offset).await?;
            return Err(Error::PayloadTooLarge);
        }
        if let Err(e) = file.write_all(bytes).await {
            drop(file);
            truncate(&path, offset).await?;
            return Err(Error::Internal(format!("writing upload {id}: {e}")));
        }
        at += bytes.len() as u64;
    }
    file.flush()
        .await
        .and(file.sync_data().await)
        .map_err(|e| Error::Internal(format!("syncing upload {id}: {e}")))?;
    drop(file);
    up.offset = at;
    up.updated_at = OffsetDateTime::now_utc();
    if let Some(why) = broke {
        ups.write(&up).await?;
        tracing::info!(upload.id = %id, upload.offset = at, reason = %why, "upload interrupted");
        return Err(Error::InvalidRequest(format!(
            "{why}; resume from offset {at}"
        )));
    }
    if at == up.length {
        up.state = JobState::Queued;
    }
    ups.write(&up).await?;
    if up.state == JobState::Queued {
        tracing::info!(upload.id = %id, upload.length = up.length, "upload complete, packaging queued");
        audit::record(
            state,
            caller,
            "upload.complete",
            &format!("upload:{id}"),
            &format!("show={} length={}", up.show_id, up.length),
        )
        .await;
        ups.enqueue(id);
    }
    Ok(up)
}

async fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(|e| Error::Internal(format!("reopening {}: {e}", path.display())))?;
    f.set_len(len)
        .await
        .map_err(|e| Error::Internal(format!("truncating {}: {e}", path.display())))
}

/// Deletes an upload (tus termination): its bytes and record. A finished job's media folder stays (the
/// show streams from it).
///
/// # Errors
/// `uploads_disabled`; `tus_version_unsupported`; `upload_unknown`; `upload_busy` while a `PATCH` writes
/// it or its job runs; `forbidden`.
pub async fn delete_upload(
    state: &AppState,
    caller: &Caller,
    id: &str,
    tus: Option<&str>,
) -> Result<()> {
    caller.require(Permission::Manage)?;
    let ups = uploads(state)?;
    check_version(tus)?;
    if !valid_id(id) {
        return Err(Error::NotFound(Record::Upload));
    }
    let lock = ups.lock(id);
    let Ok(guard) = lock.try_lock() else {
        return Err(Error::UploadBusy(
            "another request is writing this upload, or its packaging job runs",
        ));
    };
    let up = ups.read(id).await?.ok_or(Error::NotFound(Record::Upload))?;
    tokio::fs::remove_dir_all(ups.folder(id))
        .await
        .map_err(|e| Error::Internal(format!("deleting upload {id}: {e}")))?;
    drop(guard);
    ups.forget(id);
    audit::record(
        state,
        caller,
        "upload.delete",
        &format!("upload:{id}"),
        &format!("show={} state={}", up.show_id, up.state.as_str()),
    )
    .await;
    Ok(())
}

/// Deletes unfinished uploads and finished records whose last change is older than `uploads.expiry_s`
/// (every minute, from [`crate::tasks`]). An upload being written or packaged is left for the next round.
pub async fn expire(state: &AppState) {
    let ups = &state.uploads;
    if !ups.settings().enabled {
        return;
    }
    let Ok(all) = ups.all().await else {
        return;
    };
    let now = OffsetDateTime::now_utc();
    for up in all {
        let done = matches!(
            up.state,
            JobState::Uploading | JobState::Done | JobState::Failed
        );
        if !done || up.expires_at(ups.settings().expiry_s) > now {
            continue;
        }
        let lock = ups.lock(&up.id);
        let Ok(guard) = lock.try_lock() else {
            continue;
        };
        if tokio::fs::remove_dir_all(ups.folder(&up.id)).await.is_ok() {
            drop(guard);
            ups.forget(&up.id);
            tracing::info!(upload.id = %up.id, state = up.state.as_str(), "upload expired and deleted");
            audit::record_system(
                state,
                Actor::System("uploads".into()),
                "upload.expire",
                &format!("upload:{}", up.id),
                None,
                &format!("show={} state={}", up.show_id, up.state.as_str()),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tus_metadata_is_read() {
        let m = metadata("show_id cHJlbWllcmU=, filename ZmlsbS5tcDQ=,is_confidential").unwrap();
        assert_eq!(m["show_id"], "premiere");
        assert_eq!(m["filename"], "film.mp4");
        assert_eq!(m["is_confidential"], "");
        assert!(metadata("show_id ###").is_err());
        assert!(metadata("").unwrap().is_empty());
    }

    #[test]
    fn only_upload_ids_name_folders() {
        assert!(valid_id("up_0123456789abcdef0123456789abcdef"));
        assert!(!valid_id("up_0123456789abcdef0123456789abcdeF"));
        assert!(!valid_id("../0123456789abcdef0123456789abcdef"));
        assert!(!valid_id("up_"));
    }

    #[test]
    fn only_tus_1_0_0_is_spoken() {
        assert!(check_version(None).is_ok());
        assert!(check_version(Some("")).is_ok());
        assert!(check_version(Some("1.0.0")).is_ok());
        assert!(matches!(
            check_version(Some("0.2.2")),
            Err(Error::TusVersionUnsupported)
        ));
        assert!(matches!(
            check_version(Some("(5`QJ")),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(
            check_version(Some("1..0")),
            Err(Error::InvalidRequest(_))
        ));
    }
}
