//! Operations: liveness, readiness, Prometheus metrics.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::http::views::ops::{Liveness, Readiness};
use crate::state::AppState;

/// `GET /livez`: the process answers.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "ops",
    responses((status = 200, description = "The process answers.", body = Liveness)),
)]
pub async fn livez() -> impl IntoResponse {
    axum::Json(Liveness { status: "ok" })
}

/// `GET /readyz`: 200 while the node accepts work and its store answers, and a GeoIP database is loaded
/// if any show has Geo rules that need one; 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready: the store answers and a GeoIP database is loaded if one is needed.", body = Readiness),
        (status = 503, description = "Not ready (`not_ready`: the store or a needed GeoIP database is missing) or draining.", body = Readiness, content_type = "application/json"),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.is_accepting() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Readiness {
                status: "draining",
                store: None,
                geoip: None,
            }),
        );
    }
    match state.store.ping().await {
        Ok(()) if !state.geoip.is_loaded() => match state.store.shows().await {
            Ok(shows) if shows.iter().any(|s| s.geo.needs_database()) => {
                tracing::warn!("not ready: shows have Geo rules and no GeoIP database is loaded");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(Readiness {
                        status: "not_ready",
                        store: Some("ok"),
                        geoip: Some("missing"),
                    }),
                )
            }
            Ok(_) => (
                StatusCode::OK,
                axum::Json(Readiness {
                    status: "ready",
                    store: Some("ok"),
                    geoip: Some("not_needed"),
                }),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "not ready: store");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(Readiness {
                        status: "not_ready",
                        store: Some("unavailable"),
                        geoip: None,
                    }),
                )
            }
        },
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Readiness {
                status: "ready",
                store: Some("ok"),
                geoip: Some("loaded"),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: store");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Readiness {
                    status: "not_ready",
                    store: Some("unavailable"),
                    geoip: None,
                }),
            )
        }
    }
}

/// `GET /metrics`: Prometheus text format, with live sessions per show counted at scrape time.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Ok(sessions) = state.store.sessions(None).await {
        let mut per_show: BTreeMap<String, usize> = state
            .store
            .shows()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id.to_string(), 0))
            .collect();
        for s in sessions {
            *per_show.entry(s.show_id.to_string()).or_default() += 1;
        }
        for (show, n) in per_show {
            metrics::gauge!("usher_active_sessions", "show" => show).set(n as f64);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
