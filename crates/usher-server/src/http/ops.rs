//! Operations: liveness, readiness, Prometheus metrics (behind `metrics.token`, and on `metrics.listen`
//! alone when it is set: [`metrics_router`]).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq as _;

use crate::http::views::ops::{Liveness, Readiness};
use crate::service::{Error, Result, viewer};
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
///
/// A store that stops answering is the store outage every node rides for `http.store_outage_grace_s`
/// (`service::viewer::ride_outage`): within it the node stays ready, as `degraded`, since its heartbeats,
/// steering reloads and origin keep the viewers playing; every node shares the store, so a load balancer
/// that took unready nodes out would take them all out at once (a Redis fail-over left haproxy with no
/// server and the viewers with its 503s). Past the grace it is not ready.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready (`ready`): the store answers and a GeoIP database is loaded if one is needed; or `degraded`: the store is unreachable and the node rides the outage within `http.store_outage_grace_s` (playing sessions keep playing, new admits answer 503 `store_unavailable`).", body = Readiness),
        (status = 503, description = "Not ready (`not_ready`: the store, unreachable past the outage grace, or a needed GeoIP database is missing) or draining.", body = Readiness, content_type = "application/json"),
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
    let now_ms = state.store.now().0;
    let pinged = match viewer::ride_outage(&state, now_ms, state.store.ping().await) {
        Ok(Some(())) => Ok(()),
        Ok(None) => {
            tracing::warn!("store unreachable: ready as degraded within the outage grace");
            return (
                StatusCode::OK,
                axum::Json(Readiness {
                    status: "degraded",
                    store: Some("unavailable"),
                    geoip: None,
                }),
            );
        }
        Err(e) => Err(e),
    };
    match pinged {
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

/// Marks a request that came through the separate metrics address (`metrics.listen`).
#[derive(Debug, Clone, Copy)]
pub struct MetricsListener;

/// The router of the separate metrics address: `/metrics` alone.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .fallback(|| async { Error::RouteNotFound })
        .layer(Extension(MetricsListener))
        .with_state(state)
}

/// `GET /metrics`: Prometheus text format. With `metrics.token` set it asks for that bearer token; with
/// `metrics.listen` set it is served there only.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain"),
        (status = 401, description = "`unauthorized`: `metrics.token` is set and the request does not carry it as a bearer token."),
        (status = 404, description = "`not_found`: `metrics.listen` is set, so metrics are served on that address only."),
    ),
)]
pub async fn metrics(
    State(state): State<AppState>,
    listener: Option<Extension<MetricsListener>>,
    headers: HeaderMap,
) -> Result<Response> {
    let settings = &state.config.metrics;
    if settings.listen.is_some() && listener.is_none() {
        return Err(Error::RouteNotFound);
    }
    if let Some(token) = &settings.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let expected = token.expose_secret().as_bytes();
        if !bool::from(presented.as_bytes().ct_eq(expected)) {
            return Err(Error::Unauthorized);
        }
    }
    crate::telemetry::collect_process_metrics();
    let mut text = state.metrics.render();
    text.push_str(&state.session_gauge.render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
