//! Startup and shutdown (the background tasks are [`crate::tasks`]'s): [`Application::build`] opens the store and binds (port 0 allowed);
//! [`Application::run_until`] serves until the caller's shutdown future resolves, then drains.
//!
//! Order on shutdown: not ready → (optional delay for the load balancer) → stop accepting → drain
//! in-flight requests with a deadline ([`crate::server`]) → stop background tasks → flush the store →
//! return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use usher_core::clock::SystemClock;
use usher_core::grant::GrantSigner;
use usher_core::secret::SecretHasher;
use usher_core::store::Store;
use usher_geo::live::GeoIp;
use usher_geo::proxy::TrustedProxies;
use usher_geo::update::GeoUpdater;
use usher_store::EmbeddedStore;
use usher_store::redis::{RedisConfig, RedisStore, SentinelConfig};

use crate::limits::Limits;
use crate::media_cache::MediaCache;
use crate::metered_store::MeteredStore;
use crate::pages::{self, Pages};
use crate::server::{self, Serving};
use crate::service::content_keys::wrap::ContentKeys;
use crate::service::delivery::PoolCache;
use crate::service::passwords::PasswordChecks;
use crate::settings::{Config, StoreSettings};
use crate::state::{AppState, Shared};
use crate::{http, telemetry};

/// Audit-log reads that may scan at once (each looks at up to `AUDIT_SCAN_LIMIT` entries).
const AUDIT_READS: usize = 2;

/// A built, bound, not yet serving Usher.
pub struct Application {
    listener: TcpListener,
    /// The separate `/metrics` address (`metrics.listen`), when set.
    metrics_listener: Option<TcpListener>,
    state: AppState,
    serving: Serving,
    /// The RTMP and SRT listeners, when `[ingest]` sets them.
    ingest: Option<crate::ingest::Listeners>,
}

impl Application {
    /// Opens the store, binds the listener and prepares the state.
    ///
    /// # Errors
    /// When the store cannot be opened, the address cannot be bound, or the build lacks its assets.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        anyhow::ensure!(
            pages::has_asset("watch.js")
                && pages::has_asset("tv.js")
                && pages::has_asset("watch.css")
                && pages::has_asset("docs.css"),
            "this build has no player assets: run scripts/build-web.sh, then build again"
        );
        let store = open_store(&config).await?;
        let mut config = config;
        // resolve the media folder once: the origin checks every file against it
        match std::fs::canonicalize(&config.media_dir) {
            Ok(dir) => config.media_dir = dir,
            Err(e) => {
                tracing::warn!(media_dir = %config.media_dir.display(), error = %e, "cannot resolve media_dir")
            }
        }
        if !config.media_dir.is_dir() {
            tracing::warn!(media_dir = %config.media_dir.display(), "media_dir is not a directory; the origin will answer 404");
        }
        let open_files = server::raise_open_files_limit();
        let serving = Serving::new(&config, open_files);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let metrics_listener = match config.metrics_listen() {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding metrics.listen {at}"))?,
            ),
            None => None,
        };
        let ingest = if config.ingest.enabled() {
            crate::ingest::check_ffmpeg(&config.ingest).await?;
            Some(crate::ingest::bind(&config.ingest).await?)
        } else {
            None
        };
        let ingest_addrs = ingest
            .as_ref()
            .map_or((None, None), |l| (l.rtmp_addr(), l.srt_addr()));
        let base_url: Arc<str> = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .into();
        // the recorder first, so the GeoIP load below is counted
        let metrics = telemetry::metrics_handle();
        let geoip = Arc::new(GeoIp::new());
        let geo_updates = Arc::new(
            GeoUpdater::new(geoip.clone(), config.geoip.update_settings())
                .context("preparing GeoIP updates")?,
        );
        geo_updates.load_at_start().await;
        let proxies = Arc::new(TrustedProxies::new(
            config.trusted_proxies.clone(),
            config.trusted_proxy_header,
        ));
        if config.uploads.enabled {
            crate::service::admin::uploads::jobs::check_tools()?;
        }
        let uploads = Arc::new(
            crate::service::admin::uploads::Uploads::new(
                config.uploads.clone(),
                config.uploads_dir(),
            )
            .with_context(|| {
                format!(
                    "making the uploads folder {}",
                    config.uploads_dir().display()
                )
            })?,
        );
        let config_login = config.login.clone();
        let state = AppState::new(Shared {
            store,
            hasher: Arc::new({
                let hasher = SecretHasher::new(config.token_key.expose_secret().as_bytes());
                match &config.previous_token_key {
                    Some(previous) => hasher.with_previous(previous.expose_secret().as_bytes()),
                    None => hasher,
                }
            }),
            grants: Arc::new({
                let signer = GrantSigner::new(config.grant_key.expose_secret().as_bytes());
                match &config.previous_grant_key {
                    Some(previous) => signer.with_previous(previous.expose_secret().as_bytes()),
                    None => signer,
                }
            }),
            content_keys: Arc::new({
                let keys = ContentKeys::new(
                    config
                        .key_encryption_key
                        .as_ref()
                        .map(|k| k.expose_secret().as_bytes()),
                    config.token_key.expose_secret().as_bytes(),
                );
                match &config.previous_token_key {
                    Some(previous) => keys.with_previous_token_key(
                        config.key_encryption_key.is_some(),
                        previous.expose_secret().as_bytes(),
                    ),
                    None => keys,
                }
            }),
            idempotency: Arc::new(crate::service::seal::Sealer::new(
                config.token_key.expose_secret().as_bytes(),
                crate::service::seal::IDEMPOTENT_ANSWERS,
            )),
            tv_sealer: Arc::new(crate::service::seal::Sealer::new(
                config.token_key.expose_secret().as_bytes(),
                crate::service::seal::TV_APPROVALS,
            )),
            base_url,
            pages: Arc::new(Pages::new().context("compiling page templates")?),
            accepting: Arc::new(AtomicBool::new(true)),
            metrics,
            pool_cache: PoolCache::new(config.grant_key.clone()).context("the grant key")?,
            media: Arc::new(MediaCache::new(
                config.media_dir.clone(),
                &config.media_cache,
            )),
            lease_checks: Arc::new(crate::lease_checks::LeaseChecks::new(
                config.http.media_lease_check_ms,
            )),
            geoip,
            geo_updates,
            proxies,
            outage: Arc::default(),
            outcomes: Arc::default(),
            refusals: Arc::default(),
            limits: Arc::new(Limits::new(&config.rate_limits)),
            passwords: Arc::new(PasswordChecks::new(
                config_login.checks(),
                config_login.check_wait(),
            )),
            audit_reads: Arc::new(tokio::sync::Semaphore::new(AUDIT_READS)),
            session_gauge: Arc::default(),
            uploads,
            ingest: Arc::default(),
            ingest_addrs,
            config: Arc::new(config),
        });
        Ok(Self {
            listener,
            metrics_listener,
            state,
            serving,
            ingest,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound address of the separate `/metrics` listener, when `metrics.listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// First run: adds the console user `admin` with a one-time password when there is no console user,
    /// and returns that password (show it once, never log it).
    ///
    /// # Errors
    /// The store's error.
    pub async fn bootstrap_admin(&self) -> anyhow::Result<Option<String>> {
        crate::service::auth::bootstrap_admin(&*self.state.store).await
    }

    /// The application state (for setup steps such as the demo's).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains and flushes.
    ///
    /// # Errors
    /// When serving fails or the final flush cannot be made durable.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            metrics_listener,
            state,
            serving,
            ingest,
        } = self;
        let tasks = TaskTracker::new();
        let cancel = CancellationToken::new();
        crate::tasks::spawn(&tasks, &state, &cancel);
        if let Some(listeners) = ingest {
            let show = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
            tracing::info!(
                rtmp = %show(listeners.rtmp_addr()),
                srt = %show(listeners.srt_addr()),
                "ingest listening"
            );
            crate::ingest::spawn(listeners, &state, &tasks, &cancel);
        }
        tasks.close();

        let stop = CancellationToken::new();
        let router = http::router(state.clone());
        let server = tokio::spawn(server::serve(listener, router, serving, stop.clone()));
        // scrapers stop with the listener: the separate address follows the main one
        let metrics_server = metrics_listener.map(|l| {
            let stop = stop.clone();
            tokio::spawn(
                axum::serve(l, http::ops::metrics_router(state.clone()))
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .into_future(),
            )
        });
        let http_cfg = state.config.http.clone();
        shutdown.await;
        state.accepting.store(false, Ordering::SeqCst);
        tracing::info!(
            delay_s = http_cfg.shutdown_delay_s,
            drain_timeout_s = http_cfg.drain_timeout_s,
            "shutting down: not ready"
        );
        tokio::time::sleep(Duration::from_secs(http_cfg.shutdown_delay_s)).await;
        stop.cancel();
        match server.await {
            Ok(true) => tracing::info!("in-flight requests finished"),
            Ok(false) => tracing::warn!("drain deadline passed; closed the remaining connections"),
            Err(e) => tracing::error!(error = %e, "server task failed"),
        }
        if let Some(m) = metrics_server {
            let _ = m.await;
        }
        cancel.cancel();
        tasks.wait().await;
        state
            .store
            .close()
            .await
            .context("final flush of the store")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Opens the configured store.
///
/// # Errors
/// When the store cannot be opened or reached.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &config.store {
        StoreSettings::Embedded => {
            let dir = config.data_dir.clone();
            let s = tokio::task::spawn_blocking(move || {
                EmbeddedStore::open(&dir, Arc::new(SystemClock))
            })
            .await?
            .with_context(|| {
                format!(
                    "opening the embedded store in {}",
                    config.data_dir.display()
                )
            })?;
            Ok(Arc::new(MeteredStore::new(Arc::new(s))))
        }
        StoreSettings::Redis(r) => {
            let s = connect_redis(r).await?;
            Ok(Arc::new(MeteredStore::new(Arc::new(s))))
        }
    }
}

/// A node's connection to the Redis of `r`.
pub async fn connect_redis(r: &crate::settings::RedisSettings) -> anyhow::Result<RedisStore> {
    RedisStore::connect(RedisConfig {
        url: r.url.expose_secret().to_owned(),
        key_prefix: r.key_prefix.clone(),
        connect_timeout: Duration::from_millis(r.connect_timeout_ms),
        response_timeout: Duration::from_millis(r.response_timeout_ms),
        wait_replicas: r.wait_replicas,
        wait_timeout: Duration::from_millis(r.wait_timeout_ms),
        sentinel: r.sentinel.as_ref().map(|s| SentinelConfig {
            master_name: s.master_name.clone(),
            addresses: s.addresses.clone(),
        }),
    })
    .await
    .context("connecting to Redis")
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
