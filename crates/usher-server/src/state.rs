//! The one application state every handler draws from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics_exporter_prometheus::PrometheusHandle;
use usher_core::grant::GrantSigner;
use usher_core::secret::SecretHasher;
use usher_core::store::Store;
use usher_geo::live::GeoIp;
use usher_geo::proxy::TrustedProxies;
use usher_geo::update::GeoUpdater;

use crate::pages::Pages;
use crate::settings::Config;

/// Shared, cheap-to-clone state: `Arc`s all the way down.
#[derive(Clone)]
pub struct AppState {
    /// The store backend.
    pub store: Arc<dyn Store>,
    /// Hashes tokens and API keys.
    pub hasher: Arc<SecretHasher>,
    /// Signs and checks origin grants.
    pub grants: Arc<GrantSigner>,
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
}

impl AppState {
    /// Whether the node still takes new work.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }
}
