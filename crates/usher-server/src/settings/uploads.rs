//! `[uploads]`: resumable uploads of on-demand video (tus 1.0) and the packaging jobs they start.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[uploads]`: off by default (packaging needs ffmpeg and ffprobe, checked at start when on).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSettings {
    /// Whether `/api/v1/uploads` takes uploads (and the node runs packaging jobs).
    pub enabled: bool,
    /// Where uploads are written while they arrive, with their records (default `<data_dir>/uploads`).
    pub dir: Option<PathBuf>,
    /// Largest upload accepted, in bytes (`Upload-Length`).
    pub max_bytes: u64,
    /// Packaging jobs that run at once on this node.
    pub concurrency: usize,
    /// Seconds an unfinished upload is kept after its last byte arrived, and a finished job's record
    /// after it ended; then both are deleted.
    pub expiry_s: u64,
    /// The x264 preset of the ladder (`ultrafast` … `veryslow`): faster presets make larger files.
    pub x264_preset: String,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            dir: None,
            max_bytes: 20 * 1024 * 1024 * 1024,
            concurrency: 1,
            expiry_s: 86_400,
            x264_preset: "veryfast".into(),
        }
    }
}

/// The presets x264 knows.
const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

impl UploadSettings {
    /// Checks the values.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(1..=(1u64 << 40)).contains(&self.max_bytes) {
            return Err(invalid(
                "uploads.max_bytes",
                "must be 1 to 1099511627776 (1 TiB)",
            ));
        }
        if !(1..=16).contains(&self.concurrency) {
            return Err(invalid("uploads.concurrency", "must be 1 to 16"));
        }
        if !(60..=30 * 86_400).contains(&self.expiry_s) {
            return Err(invalid(
                "uploads.expiry_s",
                "must be 60 to 2592000 (30 days)",
            ));
        }
        if !PRESETS.contains(&self.x264_preset.as_str()) {
            return Err(invalid(
                "uploads.x264_preset",
                format!("must be one of {}", PRESETS.join(", ")),
            ));
        }
        Ok(())
    }
}
