//! The node's background tasks, each stopping when `cancel` fires: the store's flush of leases and the
//! dashboard's outcome counts (every second), the store's lease sweep (every 15 s), the rate limits'
//! pruning (every 10 s), GeoIP updates, and the CDN health probes.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::AppState;

/// Spawns every background task of a serving node on `tasks`.
pub fn spawn(tasks: &TaskTracker, state: &AppState, cancel: &CancellationToken) {
    {
        let store = state.store.clone();
        let outcomes = state.outcomes.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = store.flush().await {
                            tracing::warn!(error = %e, "lease flush failed; will retry");
                        }
                        if let Err(e) = outcomes.flush(&*store).await {
                            tracing::debug!(error = %e, "outcome counts not added; will retry");
                        }
                    },
                }
            }
        });
    }
    {
        // the store's lease sweep (`Store::sweep`: Redis has nothing to sweep)
        let store = state.store.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = store.sweep().await {
                            tracing::warn!(error = %e, "lease sweep failed; will retry");
                        }
                    }
                }
            }
        });
    }
    {
        // the rate limits forget keys whose bucket is full again, so their maps hold recent attempts only
        let limits = state.limits.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => limits.prune(),
                }
            }
        });
    }
    tasks.spawn(state.geo_updates.clone().run(cancel.clone()));
    tasks.spawn(crate::cdn_probe::run(state.clone(), cancel.clone()));
}
