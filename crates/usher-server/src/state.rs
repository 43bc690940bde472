//! The one application state every handler draws from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use usher_core::grant::GrantSigner;
use usher_core::secret::SecretHasher;
use usher_core::store::Store;
use usher_geo::live::GeoIp;
use usher_geo::proxy::TrustedProxies;
use usher_geo::update::GeoUpdater;

use crate::pages::Pages;
use crate::settings::Config;

/// The one state every handler draws from: one `Arc`, so the clone axum makes for each extractor and
/// middleware is one reference count, not one per field (the field-by-field clone and drop were ~9 % of
/// a heartbeat's CPU in a perf profile). Fields are reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps the shared parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    /// The store backend.
    pub store: Arc<dyn Store>,
    /// Hashes tokens and API keys.
    pub hasher: Arc<SecretHasher>,
    /// Signs and checks origin grants.
    pub grants: Arc<GrantSigner>,
    /// Wraps and unwraps content keys (the key-encryption key), with the keys this node unwrapped.
    pub content_keys: Arc<crate::service::content_keys::wrap::ContentKeys>,
    /// Seals the answers remembered under an `Idempotency-Key`.
    pub idempotency: Arc<crate::service::seal::Sealer>,
    /// Seals the ticket tokens that approved TV sign-in codes hand to their TVs.
    pub tv_sealer: Arc<crate::service::seal::Sealer>,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The public base URL (configured, or derived from the bound address).
    pub base_url: Arc<str>,
    /// Server-rendered pages.
    pub pages: Arc<Pages>,
    /// False once shutdown began: `/readyz` answers 503.
    pub accepting: Arc<AtomicBool>,
    /// Renders Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// The GeoIP database in service.
    pub geoip: Arc<GeoIp>,
    /// Keeps it up to date (file, upload, download).
    pub geo_updates: Arc<GeoUpdater>,
    /// Whose forwarding headers name the client.
    pub proxies: Arc<TrustedProxies>,
    /// Since when the store has been unreachable, if it is.
    pub outage: Arc<Outage>,
    /// The CDN pool with its signers parsed, while unchanged.
    pub pool_cache: crate::service::delivery::cdn_pool::PoolCache,
    /// The origin's media files in memory.
    pub media: Arc<crate::media_cache::MediaCache>,
    /// Admit outcomes not yet added to the store's per-minute counts.
    pub outcomes: Arc<crate::outcomes::OutcomeTally>,
    /// Refused admits per show and reason, for the `session.refused` webhook.
    pub refusals: Arc<crate::outcomes::RefusalTally>,
    /// The rate limits' buckets.
    pub limits: Arc<crate::limits::Limits>,
    /// The argon2 runs that may go on at once (`[login]`).
    pub passwords: Arc<crate::service::passwords::PasswordChecks>,
    /// The audit-log reads that may go on at once (each may scan many entries).
    pub audit_reads: Arc<tokio::sync::Semaphore>,
    /// Sessions holding a lease per published show, as the metrics task last read them.
    pub session_gauge: Arc<crate::telemetry::SessionGauge>,
    /// This node's uploads and their packaging jobs (`[uploads]`).
    pub uploads: Arc<crate::service::admin::uploads::Uploads>,
    /// The live inputs of this node (`[ingest]`).
    pub ingest: Arc<crate::ingest::hub::Hub>,
    /// The bound ingest listeners' addresses (RTMP, SRT), for the ingest URLs.
    pub ingest_addrs: (Option<std::net::SocketAddr>, Option<std::net::SocketAddr>),
}

/// Tracks a store outage so sessions already playing can ride it out for a bounded grace.
#[derive(Debug, Default)]
pub struct Outage {
    /// Unix milliseconds of the first failure of the current outage; 0 while the store answers.
    since_ms: AtomicI64,
}

impl Outage {
    /// Notes that the store failed at `now_ms` (keeps the start of an outage already under way).
    pub fn failed(&self, now_ms: i64) {
        let _ =
            self.since_ms
                .compare_exchange(0, now_ms.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Notes that the store answered.
    pub fn recovered(&self) {
        if self.since_ms.swap(0, Ordering::SeqCst) != 0 {
            tracing::warn!("store reachable again");
        }
    }

    /// Whether an outage is under way and began less than `grace_s` seconds before `now_ms`.
    pub fn within_grace(&self, now_ms: i64, grace_s: u64) -> bool {
        self.grace_began(now_ms, grace_s).is_some()
    }

    /// When the outage under way began (Unix milliseconds), while it is within its grace.
    pub fn grace_began(&self, now_ms: i64, grace_s: u64) -> Option<i64> {
        let since = self.since_ms.load(Ordering::SeqCst);
        (since != 0 && now_ms.saturating_sub(since) < (grace_s as i64).saturating_mul(1000))
            .then_some(since)
    }
}

impl AppState {
    /// Whether the node still takes new work.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }
}
