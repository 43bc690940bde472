//! `[backup]`: scheduled off-site backups (the embedded store's snapshot, or an RDB snapshot of Redis) to
//! a local folder or S3-compatible object storage.

use secrecy::SecretString;
use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[backup]`: with `destination` set, one node takes a backup every `interval_s` and keeps the newest
/// `keep`, none older than `keep_days` (the newest is never removed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSettings {
    /// Where backups go: `file:///absolute/folder` or `s3://bucket/prefix` (credentials, region and
    /// endpoint from the `AWS_*` environment variables). Unset: no scheduled backups.
    pub destination: Option<String>,
    /// Seconds between backups (1 to 604800; a few seconds is for tests: each backup copies the whole
    /// store).
    pub interval_s: u64,
    /// Backups kept, newest first (1 to 10000).
    pub keep: u32,
    /// Days a backup is kept (0: no age limit).
    pub keep_days: u32,
    /// Redis store: the server the RDB snapshot is read from (`redis://[user:password@]host:port`),
    /// best a replica, so the master does no extra work. Unset: the store's `url`.
    pub redis_source: Option<SecretString>,
}

impl Default for BackupSettings {
    fn default() -> Self {
        Self {
            destination: None,
            interval_s: 3_600,
            keep: 24,
            keep_days: 30,
            redis_source: None,
        }
    }
}

impl BackupSettings {
    /// Checks the ranges and the destination's form.
    ///
    /// # Errors
    /// The first setting out of range or a destination that is neither `file:///…` nor `s3://bucket…`.
    pub fn check(&self) -> Result<(), ConfigError> {
        if let Some(d) = &self.destination {
            crate::backup::offsite::Destination::check_url(d)
                .map_err(|why| invalid("backup.destination", why))?;
        }
        if !(1..=604_800).contains(&self.interval_s) {
            return Err(invalid("backup.interval_s", "must be 1 to 604800"));
        }
        if !(1..=10_000).contains(&self.keep) {
            return Err(invalid("backup.keep", "must be 1 to 10000"));
        }
        if self.keep_days > 36_500 {
            return Err(invalid(
                "backup.keep_days",
                "must be 0 (no age limit) to 36500",
            ));
        }
        Ok(())
    }
}
