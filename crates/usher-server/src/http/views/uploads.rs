//! Uploads and their packaging jobs.

use serde::Serialize;
use utoipa::ToSchema;

use super::rfc3339;
use crate::service::admin::uploads::Upload;

/// An upload and its packaging job.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// `up_` and 32 hex digits; the tus upload URL is `/api/v1/uploads/{id}`.
    pub id: String,
    /// The show the video is for; its `stream_path` names the result when the job is done.
    pub show_id: String,
    /// The file's name as uploaded.
    pub filename: String,
    /// The file's length in bytes.
    pub length: u64,
    /// Bytes received so far (where a resumed upload continues).
    pub offset: u64,
    /// `uploading`, `queued`, `probing`, `packaging`, `done` or `failed`.
    #[schema(pattern = "^(uploading|queued|probing|packaging|done|failed)$")]
    pub state: &'static str,
    /// Packaging progress, 0–100.
    #[schema(minimum = 0, maximum = 100)]
    pub percent: u8,
    /// Why packaging failed.
    #[schema(required = true)]
    pub error: Option<String>,
    /// The stream folder made (the show's `stream_path`), when done.
    #[schema(required = true)]
    pub stream_path: Option<String>,
    /// The renditions made (`1080p`, `720p`, `480p`, `360p`), when done.
    pub renditions: Vec<String>,
    /// When the upload was created.
    pub created_at: Option<String>,
    /// Its last change.
    pub updated_at: Option<String>,
    /// When it will be deleted unless it changes (an unfinished upload, a finished record).
    #[schema(required = true)]
    pub expires_at: Option<String>,
}

impl UploadView {
    /// The view of `up`, which expires `expiry_s` after its last change unless a job runs.
    pub fn new(up: &Upload, expiry_s: u64) -> Self {
        let queued_or_running = !matches!(
            up.state,
            crate::service::admin::uploads::JobState::Uploading
                | crate::service::admin::uploads::JobState::Done
                | crate::service::admin::uploads::JobState::Failed
        );
        Self {
            id: up.id.clone(),
            show_id: up.show_id.clone(),
            filename: up.filename.clone(),
            length: up.length,
            offset: up.offset,
            state: up.state.as_str(),
            percent: up.percent,
            error: up.error.clone(),
            stream_path: up.stream_path.clone(),
            renditions: up.renditions.clone(),
            created_at: rfc3339(up.created_at),
            updated_at: rfc3339(up.updated_at),
            expires_at: if queued_or_running {
                None
            } else {
                rfc3339(up.expires_at(expiry_s))
            },
        }
    }
}

/// This node's uploads, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadList {
    /// The uploads.
    pub uploads: Vec<UploadView>,
}
