//! The database in service: swapped atomically, read without locks.
//!
//! Lookups load the current database through an [`ArcSwapOption`] (a few atomic operations, no lock, no
//! wait); a reload checks the new file completely on the calling thread and only then swaps the pointer,
//! so a lookup never waits for a reload and never sees a half-loaded or broken database. Readers that
//! still hold the old database finish with it; it is freed when the last one lets go.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwapOption;
use serde::Serialize;
use time::OffsetDateTime;

use crate::db::{DbInfo, GeoDb, LoadError, Source};
use crate::policy::Lookup;

/// What a successful reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reloaded {
    /// The new database now serves.
    Swapped,
    /// It is the database already serving (same SHA-256); nothing changed.
    Unchanged,
}

/// One reload attempt, for the status page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadEvent {
    /// When it finished.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Where the database came from.
    pub source: Source,
    /// `swapped`, `unchanged`, `invalid` (the file was refused) or `failed` (it could not be had).
    #[schema(value_type = String, pattern = "^(swapped|unchanged|invalid|failed)$")]
    pub outcome: &'static str,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The status of GeoIP, as `GET /api/v1/geoip` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GeoStatus {
    /// Whether a database serves lookups.
    pub loaded: bool,
    /// The database serving, if any.
    pub database: Option<DbInfo>,
    /// The last reload attempt, whatever its outcome.
    pub last_reload: Option<ReloadEvent>,
    /// The last failed or refused attempt.
    pub last_error: Option<ReloadEvent>,
}

#[derive(Default)]
struct History {
    last_reload: Option<ReloadEvent>,
    last_error: Option<ReloadEvent>,
}

/// The live GeoIP database of the process.
#[derive(Default)]
pub struct GeoIp {
    current: ArcSwapOption<GeoDb>,
    history: Mutex<History>,
    // one reload at a time, so a slow check of an older file cannot swap in after a newer one
    reloading: Mutex<()>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // the guarded values are replaced whole, so a panic elsewhere cannot leave them half-written
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl GeoIp {
    /// No database yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the database says about `ip`. Never blocks.
    pub fn lookup(&self, ip: IpAddr) -> Lookup {
        match &*self.current.load() {
            Some(db) => db.country(ip).map_or(Lookup::Unknown, Lookup::Country),
            None => Lookup::NoDatabase,
        }
    }

    /// The database serving now, if any.
    pub fn database(&self) -> Option<Arc<GeoDb>> {
        self.current.load_full()
    }

    /// Whether a database serves lookups.
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// Checks `bytes` and, when they are a good database, swaps them in. Blocking and CPU-bound: call it
    /// off the async runtime.
    ///
    /// # Errors
    /// [`LoadError::Invalid`] when the bytes are refused; the database serving stays.
    pub fn load(&self, bytes: Vec<u8>, source: Source) -> Result<Reloaded, LoadError> {
        let _one_at_a_time = lock(&self.reloading);
        let started = std::time::Instant::now();
        match GeoDb::from_bytes(bytes, source.clone()) {
            Ok(db) => {
                let outcome = self.install(db);
                tracing::info!(
                    geoip.source = source.kind(),
                    outcome = ?outcome,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "GeoIP database checked"
                );
                Ok(outcome)
            }
            Err(e) => {
                self.failed(source, &e);
                Err(e)
            }
        }
    }

    fn install(&self, db: GeoDb) -> Reloaded {
        let info = db.info().clone();
        let same = self
            .current
            .load()
            .as_ref()
            .is_some_and(|cur| cur.info().sha256 == info.sha256);
        let outcome = if same {
            Reloaded::Unchanged
        } else {
            if let Some(cur) = &*self.current.load()
                && cur.info().build_epoch > info.build_epoch
            {
                tracing::warn!(
                    geoip.built_at = %info.built_at,
                    geoip.serving_built_at = %cur.info().built_at,
                    "installing a GeoIP database older than the one it replaces"
                );
            }
            self.current.store(Some(Arc::new(db)));
            metrics::gauge!("usher_geoip_build_timestamp_seconds").set(info.build_epoch as f64);
            metrics::gauge!("usher_geoip_loaded").set(1.0);
            tracing::info!(
                geoip.type = %info.database_type,
                geoip.built_at = %info.built_at,
                geoip.networks = info.network_count,
                geoip.source = info.source.kind(),
                "GeoIP database swapped in"
            );
            Reloaded::Swapped
        };
        let name = match outcome {
            Reloaded::Swapped => "swapped",
            Reloaded::Unchanged => "unchanged",
        };
        metrics::counter!("usher_geoip_reloads_total", "source" => info.source.kind(), "outcome" => name)
            .increment(1);
        lock(&self.history).last_reload = Some(ReloadEvent {
            at: OffsetDateTime::now_utc(),
            source: info.source,
            outcome: name,
            error: None,
        });
        outcome
    }

    /// Records an attempt that did not produce a database (the file was refused or could not be had).
    pub fn failed(&self, source: Source, error: &LoadError) {
        let outcome = match error {
            LoadError::Invalid(_) => "invalid",
            LoadError::Io(_) | LoadError::Unconfigured(_) => "failed",
        };
        tracing::warn!(geoip.source = source.kind(), outcome, error = %error, "GeoIP reload refused; the database serving stays");
        metrics::counter!("usher_geoip_reloads_total", "source" => source.kind(), "outcome" => outcome)
            .increment(1);
        let event = ReloadEvent {
            at: OffsetDateTime::now_utc(),
            source,
            outcome,
            error: Some(error.to_string()),
        };
        let mut h = lock(&self.history);
        h.last_reload = Some(event.clone());
        h.last_error = Some(event);
    }

    /// The status for admins.
    pub fn status(&self) -> GeoStatus {
        let db = self.database();
        let h = lock(&self.history);
        GeoStatus {
            loaded: db.is_some(),
            database: db.map(|d| d.info().clone()),
            last_reload: h.last_reload.clone(),
            last_error: h.last_error.clone(),
        }
    }
}
