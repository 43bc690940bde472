//! CDN health probes: every `cdn_probe.interval_ms`, each CDN that names a `canary` object is asked for
//! it through its base URL, signed with its own scheme exactly as a viewer's request would be. After
//! `fail_after` failures in a row a CDN becomes unhealthy (last in the steering order, or out of it with
//! `exclude_unhealthy`); after `recover_after` successes in a row it is healthy again. Results go to the
//! store with [`usher_core::store::Store::set_cdn_health`] (so every node steers the same way and an admin's concurrent
//! change is never undone) and to metrics.
//!
//! Every node probes; the counts in a row are per node, the state is shared. Errors are recorded
//! without the URL, which carries a signature.
//!
//! A probe is a request the server makes on an admin's word, and its result is readable by observers, so
//! it is kept from becoming a way into the server's network: it goes only to the CDN's own `base_url`
//! (scheme, host and port; [`under_base`]), only to public addresses unless
//! `cdn_probe.allow_private_targets` is set ([`is_public`], checked on the literal host and on every
//! address a name resolves to, at connection time, so a rebinding name gains nothing), never through a
//! proxy or a redirect, and it reads at most [`PROBE_BODY_CAP`] bytes of the answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use usher_core::cdn::{Cdn, CdnHealth, HealthState};
use usher_core::clock::UnixMs;
use usher_core::ids::CdnId;

use crate::service::delivery::{Binding, sign_object};
use crate::settings::CdnProbeSettings;
use crate::state::AppState;

/// Seconds a probe's signature stays valid.
const PROBE_SIGNATURE_S: i64 = 60;
/// The most of an answer's body a probe reads (a canary is a playlist or a segment; its first MiB shows
/// the CDN delivers), so a CDN that answers forever costs a bounded read.
pub const PROBE_BODY_CAP: usize = 1 << 20;

/// Networks that are not the public internet (IANA's special-purpose registries): loopback, private,
/// shared (CGNAT), link-local, unique-local, documentation, benchmarking, multicast and reserved ranges.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Whether `ip` is an address of the public internet (IPv4-mapped IPv6 addresses count as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    !NOT_PUBLIC.iter().any(|n| {
        n.parse::<IpNet>()
            .expect("the table holds networks")
            .contains(&ip)
    })
}

/// Whether `url` (what a probe fetches) lies under `base_url` (the CDN's): the same scheme, host and port,
/// and a path ending with the base's path and the canary (a scheme may put a token before them).
pub fn under_base(url: &reqwest::Url, base_url: &str, canary: &str) -> bool {
    let Ok(base) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let tail = format!("{}/{canary}", base.path().trim_end_matches('/'));
    url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().ends_with(&tail)
}

/// Resolves names as the system does, keeping only public addresses: a probe never connects anywhere
/// else, whatever a name resolves to at that moment.
#[derive(Debug)]
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (cdn_probe.allow_private_targets is off)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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
    let url =
        reqwest::Url::parse(&signed.url).map_err(|_| "the signed URL does not parse".to_owned())?;
    if !under_base(&url, &cdn.base_url, canary) {
        return Err("refused: the signed canary URL is not under the CDN's base_url".into());
    }
    if let Some(ip) = literal_ip(&url)
        && !state.config.cdn_probe.allow_private_targets
        && !is_public(ip)
    {
        return Err(
            "refused: base_url is not a public address (cdn_probe.allow_private_targets is off)"
                .into(),
        );
    }
    let mut req = client.get(url);
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
    let mut res = req.send().await.map_err(|e| {
        // the resolver's refusal is the cause that says why
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            if c.to_string().contains("allow_private_targets") {
                return format!("refused: {c}");
            }
            cause = c.source();
        }
        format!("request failed: {}", e.without_url())
    })?;
    let status = res.status();
    // read the body (a CDN that answers headers and then stalls is not healthy), up to the cap
    let mut read = 0;
    while read < PROBE_BODY_CAP {
        match res.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) => break,
            Err(e) => return Err(format!("reading the answer: {}", e.without_url())),
        }
    }
    drop(res);
    if status.is_success() {
        Ok(started.elapsed())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// The host of `url` when it is an IP address (names go through [`PublicOnly`]).
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
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
            let event = match (cdn.health.state, health.state) {
                (_, HealthState::Unhealthy) => Some("cdn.unhealthy"),
                (HealthState::Unhealthy, HealthState::Healthy) => Some("cdn.recovered"),
                _ => None,
            };
            if let Some(event) = event {
                crate::service::webhooks::emit(
                    state,
                    event,
                    serde_json::json!({
                        "cdn_id": cdn.id,
                        "name": cdn.name,
                        "error": health.last_error,
                    }),
                )
                .await;
            }
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
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("usher-cdn-probe/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_private_targets {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    let client = match builder.build() {
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
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "151.101.1.1", "2a04:4e42::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_probe_url_must_lie_under_the_base_url() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let canary = "demo/master.m3u8";
        for ok in [
            "https://cdn.example/demo/master.m3u8?token=x",
            "https://cdn.example:443/tok,123/demo/master.m3u8",
        ] {
            assert!(under_base(&url(ok), "https://cdn.example", canary), "{ok}");
        }
        assert!(under_base(
            &url("https://cdn.example/bcdn_token=x/media/demo/master.m3u8"),
            "https://cdn.example/media",
            canary
        ));
        for bad in [
            "http://cdn.example/demo/master.m3u8",
            "https://cdn.example:8443/demo/master.m3u8",
            "https://evil.example/demo/master.m3u8",
            "https://cdn.example/other.m3u8",
            "https://169.254.169.254/demo/master.m3u8",
        ] {
            assert!(
                !under_base(&url(bad), "https://cdn.example", canary),
                "{bad}"
            );
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
