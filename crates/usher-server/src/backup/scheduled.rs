//! Scheduled off-site backups (`[backup]`): a node looks at the destination every few seconds to a
//! minute, and when its newest backup is `interval_s` old takes one — the embedded store's consistent
//! snapshot, or an RDB snapshot from `backup.redis_source` (best a replica) — checks it, uploads it with
//! its manifest, and applies the retention. Every node of a Redis deployment looks; the first to find the
//! newest backup due takes the next one (two nodes looking in the same second may both take one).
//!
//! Metrics: `usher_backups_total{outcome}` (`ok`, `failed`), `usher_backup_last_success_timestamp_seconds`
//! (from the destination's newest backup, so a restarted node reports it too), `usher_backup_size_bytes`,
//! `usher_backup_last_duration_seconds`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use time::OffsetDateTime;
use usher_store::embedded::EMBEDDED_SCHEMA;
use usher_store::redis::REDIS_SCHEMA;

use super::offsite::{Destination, Kind, Manifest, digest};
use super::rdb;
use crate::settings::StoreSettings;
use crate::state::AppState;

/// How often the destination is looked at: a quarter of the interval, between 1 s and a minute.
pub fn check_every(interval_s: u64) -> Duration {
    Duration::from_secs((interval_s / 4).clamp(1, 60))
}

/// One look at the destination: takes a backup when the newest is due (or there is none).
pub async fn tick(state: &AppState) {
    let settings = &state.config.backup;
    let Some(url) = settings.destination.as_deref() else {
        return;
    };
    let dest = match Destination::open(url) {
        Ok(d) => d,
        Err(e) => {
            failed(&format!("{e:#}"));
            return;
        }
    };
    let newest = match dest.list().await {
        Ok(list) => list.into_iter().next(),
        Err(e) => {
            failed(&format!("{e:#}"));
            return;
        }
    };
    if let Some(n) = &newest {
        metrics::gauge!("usher_backup_last_success_timestamp_seconds")
            .set(n.taken_at.unix_timestamp() as f64);
        let age = OffsetDateTime::now_utc() - n.taken_at;
        if age < time::Duration::seconds(settings.interval_s as i64) {
            return;
        }
    }
    let started = Instant::now();
    match take(state, &dest).await {
        Ok(m) => {
            metrics::counter!("usher_backups_total", "outcome" => "ok").increment(1);
            metrics::gauge!("usher_backup_last_success_timestamp_seconds")
                .set(m.taken_at.unix_timestamp() as f64);
            metrics::gauge!("usher_backup_size_bytes").set(m.bytes as f64);
            metrics::gauge!("usher_backup_last_duration_seconds")
                .set(started.elapsed().as_secs_f64());
            tracing::info!(backup = %m.file, bytes = m.bytes, destination = %url, "backup taken");
            match dest.prune(settings.keep, settings.keep_days).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(removed = ?removed, "old backups removed");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "old backups not removed; will retry")
                }
            }
        }
        Err(e) => failed(&format!("{e:#}")),
    }
}

fn failed(why: &str) {
    metrics::counter!("usher_backups_total", "outcome" => "failed").increment(1);
    tracing::error!(error = %why, "backup failed; will retry");
}

/// Removes a staging file when dropped.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn take(state: &AppState, dest: &Destination) -> anyhow::Result<Manifest> {
    let taken_at = OffsetDateTime::now_utc();
    let (kind, schema) = match &state.config.store {
        StoreSettings::Embedded => (Kind::Embedded, EMBEDDED_SCHEMA),
        StoreSettings::Redis(_) => (Kind::Redis, REDIS_SCHEMA),
    };
    let file = Manifest::file_name(kind, taken_at);
    let staging = state.config.data_dir.join(".backups");
    tokio::fs::create_dir_all(&staging)
        .await
        .with_context(|| format!("making {}", staging.display()))?;
    let staged = Staged(staging.join(format!("{file}.{}", std::process::id())));
    let _ = tokio::fs::remove_file(&staged.0).await;
    snapshot(state, &staged.0).await?;
    let (bytes, sha256) = digest(&staged.0).await?;
    let manifest = Manifest {
        file,
        store: kind,
        bytes,
        sha256,
        schema,
        release: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at,
    };
    dest.upload(&staged.0, &manifest).await?;
    Ok(manifest)
}

/// Writes the store's snapshot to `to`.
async fn snapshot(state: &AppState, to: &Path) -> anyhow::Result<()> {
    match &state.config.store {
        StoreSettings::Embedded => {
            state
                .store
                .backup(to)
                .await
                .context("taking the embedded store's snapshot")?;
        }
        StoreSettings::Redis(r) => {
            let source = state
                .config
                .backup
                .redis_source
                .as_ref()
                .unwrap_or(&r.url)
                .expose_secret();
            rdb::fetch(source, to)
                .await
                .context("reading Redis's snapshot")?;
        }
    }
    Ok(())
}
