//! The dashboard's figures (`GET /api/v1/dashboard`, and the console's first page): live viewers per
//! show, admits and refusals in the last hour by outcome, CDN health and the GeoIP database's age.

use std::collections::BTreeMap;

use usher_core::admin::Permission;
use usher_core::cdn::Cdn;
use usher_core::clock::UnixMs;

use crate::service::delivery::pool;
use crate::service::{Caller, Result};
use crate::state::AppState;

/// Outcomes that let a viewer in.
const ADMITTED: &[&str] = &["admitted", "reattached"];

/// A show's live viewers.
#[derive(Debug, Clone)]
pub struct ShowViewers {
    /// The show's id (a session may outlive its show: then the title is empty).
    pub show_id: String,
    /// Its title.
    pub title: String,
    /// Whether it is published.
    pub published: bool,
    /// Sessions holding a seat.
    pub viewers: u64,
}

/// The dashboard's figures.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// When they were taken.
    pub at: UnixMs,
    /// Sessions holding a seat ([`usher_core::store::Store::live_session_counts`]: on the embedded store
    /// a lease that lapsed unrenewed leaves the count at the next sweep, within 15 s).
    pub live_viewers: usize,
    /// Live viewers per show, by show id.
    pub shows: Vec<ShowViewers>,
    /// Admits (admitted or reattached) in the last hour.
    pub admits: u64,
    /// Refusals in the last hour by reason (every other outcome), by reason.
    pub refusals: Vec<(String, u64)>,
    /// Every outcome of the last hour.
    pub by_outcome: BTreeMap<String, u64>,
    /// The CDN pool with its health.
    pub cdns: Vec<Cdn>,
    /// Whether a GeoIP database serves.
    pub geoip_loaded: bool,
    /// Its type.
    pub geoip_database_type: Option<String>,
    /// When it was built, Unix seconds.
    pub geoip_build_epoch: Option<u64>,
    /// Its age in whole days.
    pub geoip_age_days: Option<i64>,
}

/// The dashboard's figures.
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn dashboard(state: &AppState, caller: &Caller) -> Result<Dashboard> {
    caller.require(Permission::Read)?;
    let now = state.store.now();
    let shows = state.store.shows().await?;
    // the store's counts, kept as leases change (the sessions gauge of /metrics reads the same): one
    // step whatever the number of sessions, where listing every session took two Redis round trips each
    let live = state.store.live_session_counts().await?;
    let mut viewers: BTreeMap<String, u64> = shows.iter().map(|s| (s.id.to_string(), 0)).collect();
    for (show, n) in &live {
        *viewers.entry(show.to_string()).or_default() += n;
    }
    let live_viewers = live.iter().map(|(_, n)| *n as usize).sum();
    let titles: BTreeMap<String, (String, bool)> = shows
        .iter()
        .map(|s| (s.id.to_string(), (s.title.clone(), s.published)))
        .collect();
    let per_show = viewers
        .into_iter()
        .map(|(show_id, viewers)| {
            let (title, published) = titles.get(&show_id).cloned().unwrap_or_default();
            ShowViewers {
                show_id,
                title,
                published,
                viewers,
            }
        })
        .collect();
    let counts = state
        .store
        .outcome_counts(UnixMs(now.0 - 3600 * 1000))
        .await?;
    let mut by_outcome: BTreeMap<String, u64> = BTreeMap::new();
    for c in counts {
        *by_outcome.entry(c.outcome).or_default() += c.count;
    }
    let admits: u64 = by_outcome
        .iter()
        .filter(|(k, _)| ADMITTED.contains(&k.as_str()))
        .map(|(_, n)| n)
        .sum();
    let refusals = by_outcome
        .iter()
        .filter(|(k, _)| !ADMITTED.contains(&k.as_str()))
        .map(|(k, n)| (k.clone(), *n))
        .collect();
    let cdns = pool(state).await?;
    let geo = state.geoip.status();
    let build = geo.database.as_ref().map(|d| d.build_epoch);
    let age_days = build.map(|b| ((now.0 / 1000) - b as i64).max(0) / 86_400);
    Ok(Dashboard {
        at: now,
        live_viewers,
        shows: per_show,
        admits,
        refusals,
        by_outcome,
        cdns,
        geoip_loaded: geo.loaded,
        geoip_database_type: geo.database.as_ref().map(|d| d.database_type.clone()),
        geoip_build_epoch: build,
        geoip_age_days: age_days,
    })
}
