//! Content keys as the admin API answers them: never the key, only what names it.

use serde::{Deserialize, Serialize};
use usher_core::ids::ContentKeyId;
use utoipa::ToSchema;

use crate::service::content_keys::KeyRegistration;

/// Body of `PUT /api/v1/content-keys/{key_id}`: the key the packager made, and the stream folder whose
/// segments it encrypts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentKeySpec {
    /// The stream folder (a show's `stream_path`) the key encrypts.
    #[schema(
        pattern = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$",
        max_length = 256
    )]
    pub stream_path: String,
    /// The 16-byte AES-128 key as 32 hex digits. Write-only: no answer ever carries it but the key
    /// endpoint's, to a session holding its seat.
    #[schema(pattern = "^[0-9a-fA-F]{32}$")]
    pub key: String,
}

/// A registered content key (without the key).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentKeyView {
    /// The key's id, as key URIs name it (`/keys/{id}`).
    pub id: ContentKeyId,
    /// The stream folder it encrypts.
    pub stream_path: String,
    /// When it was first registered.
    pub created_at: String,
}

impl From<KeyRegistration> for ContentKeyView {
    fn from(r: KeyRegistration) -> Self {
        Self {
            id: r.id,
            stream_path: r.stream_path,
            created_at: r.created_at.to_rfc3339(),
        }
    }
}
