//! The dashboard (`GET /api/v1/dashboard`, and the console's first page): live viewers per show, admits
//! and refusals in the last hour by outcome, CDN health and the GeoIP database's age.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use usher_core::clock::UnixMs;

use crate::auth::{Authorized, Read};
use crate::delivery::pool;
use crate::error::ApiResult;
use crate::http::cdns::cdn_view;
use crate::state::AppState;

/// Outcomes that let a viewer in.
const ADMITTED: &[&str] = &["admitted", "reattached"];

/// The dashboard's figures.
///
/// # Errors
/// The store's error.
pub async fn dashboard(state: &AppState) -> ApiResult<Value> {
    let now = state.store.now();
    let shows = state.store.shows().await?;
    let sessions = state.store.sessions(None).await?;
    let mut viewers: BTreeMap<String, u64> = shows.iter().map(|s| (s.id.to_string(), 0)).collect();
    for s in &sessions {
        *viewers.entry(s.show_id.to_string()).or_default() += 1;
    }
    let titles: BTreeMap<String, (String, bool)> = shows
        .iter()
        .map(|s| (s.id.to_string(), (s.title.clone(), s.published)))
        .collect();
    let per_show: Vec<Value> = viewers
        .iter()
        .map(|(id, n)| {
            let (title, published) = titles.get(id).cloned().unwrap_or_default();
            json!({"show_id": id, "title": title, "published": published, "viewers": n})
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
    let refusals: Vec<Value> = by_outcome
        .iter()
        .filter(|(k, _)| !ADMITTED.contains(&k.as_str()))
        .map(|(k, n)| json!({"reason": k, "count": n}))
        .collect();
    let cdns: Vec<Value> = pool(state).await?.iter().map(cdn_view).collect();
    let geo = state.geoip.status();
    let build = geo.database.as_ref().map(|d| d.build_epoch);
    let age_days = build.map(|b| ((now.0 / 1000) - b as i64).max(0) / 86_400);
    Ok(json!({
        "at": now.to_rfc3339(),
        "live_viewers": sessions.len(),
        "shows": per_show,
        "last_hour": {
            "admits": admits,
            "refusals_total": refusals.iter().map(|r| r["count"].as_u64().unwrap_or(0)).sum::<u64>(),
            "refusals": refusals,
            "by_outcome": by_outcome,
        },
        "cdns": cdns,
        "geoip": {
            "loaded": geo.loaded,
            "database_type": geo.database.as_ref().map(|d| d.database_type.clone()),
            "build_epoch": build,
            "age_days": age_days,
        },
    }))
}

/// `GET /api/v1/dashboard`.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    tag = "ops",
    responses((status = 200, description = "`{live_viewers, shows, last_hour, cdns, geoip}`.", body = crate::openapi::schemas::Dashboard)),
    security(("bearer" = ["admin"])),
)]
pub async fn read_dashboard(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
) -> ApiResult<Json<Value>> {
    Ok(Json(dashboard(&state).await?))
}
