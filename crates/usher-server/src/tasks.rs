//! The node's background tasks, each stopping when `cancel` fires: the store's flush of leases and the
//! dashboard's outcome counts (every second), the active-sessions gauge and `usher_ready` (every second), the store's lease
//! sweep (every 15 s), the `session.refused` sums (every `webhooks.refusals_every_s`), the rate limits' pruning (every 10 s), the audit log's retention (at start and
//! every minute), the retention of tickets' personal data (at start and every minute until a pass over every ticket ends, then an hour later), the scheduled off-site backups (`[backup]`), GeoIP updates, the CDN health probes, and (with `uploads.enabled`) the packaging jobs and the
//! expiry of abandoned uploads (every minute).

use std::collections::HashMap;
use std::sync::Arc;
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
    every(
        tasks,
        state,
        cancel,
        Duration::from_secs(1),
        |state| async move {
            read_session_gauge(&state).await;
        },
    );
    every(
        tasks,
        state,
        cancel,
        Duration::from_secs(60),
        |state| async move {
            prune_audit(&state).await;
        },
    );
    // the retention of tickets' personal data (`[privacy]`): at start, then batches of tickets every
    // minute until a pass over every ticket ends (a pass over a large Redis spans several minutes), and
    // the next pass an hour after
    let pace = Arc::new(crate::service::privacy::RetentionPace::default());
    every(
        tasks,
        state,
        cancel,
        Duration::from_secs(60),
        move |state| {
            let pace = Arc::clone(&pace);
            async move {
                crate::service::privacy::apply_retention(&state, &pace).await;
            }
        },
    );
    if state.config.backup.destination.is_some() {
        every(
            tasks,
            state,
            cancel,
            crate::backup::scheduled::check_every(state.config.backup.interval_s),
            |state| async move {
                crate::backup::scheduled::tick(&state).await;
            },
        );
    }
    if state.config.uploads.enabled {
        tasks.spawn(crate::service::admin::uploads::jobs::run(
            state.clone(),
            cancel.clone(),
        ));
        let state = state.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => crate::service::admin::uploads::expire(&state).await,
                }
            }
        });
    }
    tasks.spawn(state.geo_updates.clone().run(cancel.clone()));
    tasks.spawn(crate::cdn_probe::run(state.clone(), cancel.clone()));
    tasks.spawn(crate::webhook_sender::run(state.clone(), cancel.clone()));
    {
        // refused admits, summed per show over `webhooks.refusals_every_s` into one `session.refused`
        // event each (a node's own refusals: with several nodes each sends its sum)
        let state = state.clone();
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let every = Duration::from_secs(u64::from(state.config.webhooks.refusals_every_s));
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since = state.store.now();
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        let until = state.store.now();
                        for show in state.refusals.drain() {
                            let total: u64 = show.counts.iter().map(|(_, n)| n).sum();
                            let counts: serde_json::Map<String, serde_json::Value> = show
                                .counts
                                .iter()
                                .map(|(code, n)| ((*code).to_owned(), serde_json::json!(n)))
                                .collect();
                            crate::service::webhooks::emit(
                                &state,
                                "session.refused",
                                serde_json::json!({
                                    "show_id": show.show_id,
                                    "from": since.to_rfc3339(),
                                    "until": until.to_rfc3339(),
                                    "total": total,
                                    "counts": counts,
                                }),
                            )
                            .await;
                        }
                        since = until;
                    }
                }
            }
        });
    }
}

/// Reads the sessions per show (counts the store keeps as leases change) into the metrics gauge, for the
/// published shows only.
async fn read_session_gauge(state: &AppState) {
    let (counts, shows) = match (
        state.store.live_session_counts().await,
        state.store.shows().await,
    ) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "active sessions not read; will retry");
            metrics::gauge!("usher_ready").set(0.0);
            return;
        }
    };
    // ready as `/readyz` means it, less the GeoIP check: taking work, and the store answers
    metrics::gauge!("usher_ready").set(if state.is_accepting() { 1.0 } else { 0.0 });
    let counts: HashMap<_, _> = counts.into_iter().collect();
    state.session_gauge.set(
        shows
            .into_iter()
            .filter(|s| s.published)
            .map(|s| {
                let n = counts.get(&s.id).copied().unwrap_or(0);
                (s.id.to_string(), n)
            })
            .collect(),
    );
}

/// Drops audit entries past `audit.retention_days` and beyond `audit.max_rows`, as many batches as it
/// takes.
async fn prune_audit(state: &AppState) {
    let settings = &state.config.audit;
    let before = usher_core::clock::UnixMs(
        state.store.now().0 - i64::from(settings.retention_days) * 86_400_000,
    );
    loop {
        match state.store.prune_audit(before, settings.max_rows).await {
            Ok(0) => break,
            Ok(n) => {
                tracing::info!(
                    audit.dropped = n,
                    "audit entries past their retention dropped"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit retention not applied; will retry");
                break;
            }
        }
    }
}

/// Runs `work` at once and then every `period` (a late tick waits, it is not made up) until `cancel`.
fn every<F, Fut>(
    tasks: &TaskTracker,
    state: &AppState,
    cancel: &CancellationToken,
    period: Duration,
    work: F,
) where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (state, cancel) = (state.clone(), cancel.clone());
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => work(state.clone()).await,
            }
        }
    });
}
