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
    /// The origin's lease checks, kept per session for `http.media_lease_check_ms`.
    pub lease_checks: Arc<crate::lease_checks::LeaseChecks>,
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

/// Tracks a store outage so sessions already playing can ride it out for a bounded grace, and remembers
/// the last one so the leases that lapsed during it can be held again ([`Outage::revive_since`]).
#[derive(Debug, Default)]
pub struct Outage {
    /// Unix milliseconds of the first failure of the current outage; 0 while the store answers.
    since_ms: AtomicI64,
    /// When the last outage ended (Unix ms; 0: none yet), looked at before `last` on every heartbeat.
    ended_ms: AtomicI64,
    /// The last outage that ended: when it began and when the store answered again (Unix ms).
    last: std::sync::Mutex<(i64, i64)>,
}

impl Outage {
    /// Notes that the store failed at `now_ms` (keeps the start of an outage already under way).
    pub fn failed(&self, now_ms: i64) {
        let _ =
            self.since_ms
                .compare_exchange(0, now_ms.max(1), Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Notes that the store answered at `now_ms` (ending an outage under way).
    pub fn recovered(&self, now_ms: i64) {
        // read first: every store answer comes here, and a swap on each would take the line for
        // writing from the other workers' caches on every heartbeat (an outage is rare)
        if self.since_ms.load(Ordering::SeqCst) == 0 {
            return;
        }
        let began = self.since_ms.swap(0, Ordering::SeqCst);
        if began != 0 {
            let ended = now_ms.max(began);
            *self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (began, ended);
            self.ended_ms.store(ended, Ordering::SeqCst);
            tracing::warn!(outage_ms = ended - began, "store reachable again");
        }
    }

    /// The instant since which a lapsed lease may be held again (`Presented::revive_since`): the
    /// beginning of the outage under way (this step may be the first to reach the store again), or of
    /// the last one while it ended less than `grace_s` seconds before `now_ms` — as long as it lasted no
    /// longer than `grace_s` (the sessions it caught were told to play on through it, and no heartbeat
    /// could renew their leases meanwhile). `None` otherwise: a lapsed lease ends as ever.
    pub fn revive_since(&self, now_ms: i64, grace_s: u64) -> Option<i64> {
        let grace_ms = i64::try_from(grace_s)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let since = self.since_ms.load(Ordering::SeqCst);
        if since != 0 {
            return (now_ms.saturating_sub(since) <= grace_ms).then_some(since);
        }
        let ended = self.ended_ms.load(Ordering::SeqCst);
        if ended == 0 || now_ms.saturating_sub(ended) >= grace_ms {
            return None;
        }
        let (began, ended) = *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (ended.saturating_sub(began) <= grace_ms).then_some(began)
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

#[cfg(test)]
mod outage_tests {
    use super::Outage;

    #[test]
    fn a_lapsed_lease_may_be_held_again_during_an_outage_and_for_the_grace_after_it() {
        let o = Outage::default();
        assert_eq!(o.revive_since(1_000, 120), None, "no outage yet");
        o.failed(10_000);
        o.failed(11_000);
        assert_eq!(o.revive_since(12_000, 120), Some(10_000), "under way");
        o.recovered(40_000);
        assert_eq!(o.revive_since(41_000, 120), Some(10_000), "just over");
        assert_eq!(o.revive_since(159_999, 120), Some(10_000));
        assert_eq!(o.revive_since(160_000, 120), None, "a grace after its end");
        // an outage longer than the grace: its sessions were told to stop, none is held again
        o.failed(200_000);
        assert_eq!(o.revive_since(330_000, 120), None);
        o.recovered(330_000);
        assert_eq!(o.revive_since(331_000, 120), None);
    }
}
