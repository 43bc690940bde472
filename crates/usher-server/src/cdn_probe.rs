//! CDN health probes: every `cdn_probe.interval_ms`, each CDN that names a `canary` object is asked for
//! it through its base URL, signed with its own scheme exactly as a viewer's request would be. After
//! `fail_after` failures in a row a CDN becomes unhealthy (last in the steering order, or out of it with
//! `exclude_unhealthy`); after `recover_after` successes in a row it is healthy again. Results go to the
//! store with [`usher_core::store::Store::set_cdn_health`] (so every node steers the same way and an admin's concurrent
//! change is never undone) and to metrics.
//!
//! Every node probes; the counts in a row are per node, the state is shared. Errors are recorded
//! without the URL, which carries a signature.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use usher_core::cdn::{Cdn, CdnHealth, HealthState};
use usher_core::clock::UnixMs;
use usher_core::ids::CdnId;

use crate::service::delivery::{Binding, sign_object};
use crate::settings::CdnProbeSettings;
use crate::state::AppState;

/// Seconds a probe's signature stays valid.
const PROBE_SIGNATURE_S: i64 = 60;

/// One probe's result: latency on success, the reason on failure.
type Outcome = Result<Duration, String>;

/// Failures and successes in a row, per CDN, on this node.
#[derive(Debug, Default, Clone, Copy)]
struct Streak {
    failures: u32,
    successes: u32,
}

/// Fetches the canary of `cdn` once.
async fn probe(
    state: &AppState,
    client: &reqwest::Client,
    cdn: &Cdn,
    canary: &str,
    now: UnixMs,
) -> Outcome {
    let folder = canary
        .rsplit_once('/')
        .map_or_else(String::new, |(dir, _)| format!("{dir}/"));
    let binding = Binding {
        session_id: Some("usher-probe".to_owned()),
        ..Binding::default()
    };
    let expires = now.0.div_euclid(1000) + PROBE_SIGNATURE_S;
    let signed = sign_object(state, cdn, canary, &folder, expires, &binding).await?;
    let mut req = client.get(&signed.url);
    if !signed.cookies.is_empty() {
        let cookies: Vec<String> = signed
            .cookies
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        req = req.header(reqwest::header::COOKIE, cookies.join("; "));
    }
    for h in &signed.headers {
        req = req.header(h.name.as_str(), h.value.as_str());
    }
    let started = Instant::now();
    let res = req
        .send()
        .await
        .map_err(|e| format!("request failed: {}", e.without_url()))?;
    let status = res.status();
    // read the body: a CDN that answers headers and then stalls is not healthy
    res.bytes()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?;
    if status.is_success() {
        Ok(started.elapsed())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// The health after `outcome`, given the stored one and this node's streak.
fn next_health(
    settings: &CdnProbeSettings,
    old: &CdnHealth,
    streak: &mut Streak,
    outcome: &Outcome,
    now: UnixMs,
) -> CdnHealth {
    let state = match outcome {
        Ok(_) => {
            streak.successes = streak.successes.saturating_add(1);
            streak.failures = 0;
            match old.state {
                HealthState::Unhealthy if streak.successes < settings.recover_after => {
                    HealthState::Unhealthy
                }
                _ => HealthState::Healthy,
            }
        }
        Err(_) => {
            streak.failures = streak.failures.saturating_add(1);
            streak.successes = 0;
            if streak.failures >= settings.fail_after {
                HealthState::Unhealthy
            } else {
                old.state
            }
        }
    };
    CdnHealth {
        state,
        last_error: match outcome {
            Ok(_) => old.last_error.clone(),
            Err(e) => Some(e.clone()),
        },
        checked_at: Some(now),
        latency_ms: match outcome {
            Ok(d) => Some(u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
            Err(_) => old.latency_ms,
        },
        since: if state == old.state && old.since.is_some() {
            old.since
        } else {
            Some(now)
        },
    }
}

/// Probes every CDN with a canary once, concurrently, and records the results.
async fn probe_pool(
    state: &AppState,
    client: &reqwest::Client,
    streaks: &mut HashMap<CdnId, Streak>,
) {
    let settings = &state.config.cdn_probe;
    let pool = match state.store.cdns().await {
        Ok(pool) => pool,
        Err(e) => {
            tracing::warn!(error = %e, "CDN probes skipped: the pool cannot be read");
            return;
        }
    };
    streaks.retain(|id, _| pool.iter().any(|c| &c.id == id && c.canary.is_some()));
    let now = state.store.now();
    let mut probes = tokio::task::JoinSet::new();
    for cdn in pool.into_iter().filter(|c| c.canary.is_some()) {
        let client = client.clone();
        let state = state.clone();
        probes.spawn(async move {
            let canary = cdn.canary.clone().unwrap_or_default();
            let outcome = probe(&state, &client, &cdn, &canary, now).await;
            (cdn, outcome)
        });
    }
    while let Some(done) = probes.join_next().await {
        let Ok((cdn, outcome)) = done else { continue };
        let streak = streaks.entry(cdn.id.clone()).or_default();
        let health = next_health(settings, &cdn.health, streak, &outcome, state.store.now());
        let label = cdn.id.to_string();
        match &outcome {
            Ok(d) => {
                metrics::counter!("usher_cdn_probes_total", "cdn" => label.clone(), "outcome" => "ok")
                    .increment(1);
                metrics::histogram!("usher_cdn_probe_seconds", "cdn" => label.clone())
                    .record(d.as_secs_f64());
            }
            Err(_) => {
                metrics::counter!("usher_cdn_probes_total", "cdn" => label.clone(), "outcome" => "failed")
                    .increment(1);
            }
        }
        metrics::gauge!("usher_cdn_healthy", "cdn" => label).set(
            if health.state == HealthState::Unhealthy {
                0.0
            } else {
                1.0
            },
        );
        if health.state != cdn.health.state {
            tracing::warn!(
                cdn.id = %cdn.id,
                from = ?cdn.health.state,
                to = ?health.state,
                error = health.last_error.as_deref().unwrap_or(""),
                "CDN health changed"
            );
        }
        if let Err(e) = state.store.set_cdn_health(&cdn.id, health).await {
            tracing::warn!(cdn.id = %cdn.id, error = %e, "CDN health not recorded");
        }
    }
}

/// Probes the pool until `cancel` fires (does nothing when `cdn_probe.interval_ms` is 0).
pub async fn run(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    let settings = state.config.cdn_probe.clone();
    if settings.interval_ms == 0 {
        return;
    }
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("usher-cdn-probe/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "CDN probes disabled: no HTTP client");
            return;
        }
    };
    let mut streaks = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(settings.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => probe_pool(&state, &client, &mut streaks).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CdnProbeSettings {
        CdnProbeSettings {
            fail_after: 3,
            recover_after: 2,
            ..CdnProbeSettings::default()
        }
    }

    #[test]
    fn state_changes_after_streaks() {
        let s = settings();
        let mut streak = Streak::default();
        let mut h = CdnHealth::default();
        let fail: Outcome = Err("HTTP 502".into());
        let ok: Outcome = Ok(Duration::from_millis(7));
        h = next_health(&s, &h, &mut streak, &ok, UnixMs(1));
        assert_eq!(h.state, HealthState::Healthy, "the first success counts");
        assert_eq!(h.latency_ms, Some(7));
        for t in 2..4 {
            h = next_health(&s, &h, &mut streak, &fail, UnixMs(t));
            assert_eq!(h.state, HealthState::Healthy, "{t}");
        }
        h = next_health(&s, &h, &mut streak, &fail, UnixMs(4));
        assert_eq!(h.state, HealthState::Unhealthy);
        assert_eq!(h.since, Some(UnixMs(4)));
        assert_eq!(h.last_error.as_deref(), Some("HTTP 502"));
        h = next_health(&s, &h, &mut streak, &ok, UnixMs(5));
        assert_eq!(h.state, HealthState::Unhealthy, "one success is not enough");
        h = next_health(&s, &h, &mut streak, &fail, UnixMs(6));
        h = next_health(&s, &h, &mut streak, &ok, UnixMs(7));
        assert_eq!(h.state, HealthState::Unhealthy, "the streak restarted");
        h = next_health(&s, &h, &mut streak, &ok, UnixMs(8));
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!(h.since, Some(UnixMs(8)));
    }
}
