//! The HTTP surface: one file per resource under `http/`, assembled by [`router`].

pub mod admin_users;
pub mod api_keys;
pub mod audit;
pub mod cdns;
pub mod dashboard;
pub mod geoip;
pub mod ops;
pub mod origin;
pub mod playback;
pub mod sessions;
pub mod shows;
pub mod tickets;
pub mod watch;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{pages, telemetry};

/// Every route of the service, with its middleware. A free function so tests can build it directly.
pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let timeout = Duration::from_secs(http.request_timeout_s);
    let body_limit = http.max_body_bytes;
    let media = Router::new()
        .route("/hls/{session}/master.m3u8", get(origin::master_playlist))
        .route(
            "/hls/{session}/steering.json",
            get(origin::steering_manifest),
        )
        .route("/o/{grant}/{*path}", get(origin::media))
        .route("/pull/{*path}", get(origin::pull))
        .layer(origin::cors_layer(&state.config.http.cors_origins));
    Router::new()
        .route(
            "/api/v1/tickets",
            post(tickets::register_ticket).get(tickets::search_tickets),
        )
        .route("/api/v1/tickets/batch", post(tickets::register_batch))
        .route("/api/v1/tickets/{ticket_id}", get(tickets::ticket_status))
        .route(
            "/api/v1/tickets/{ticket_id}/revoke",
            post(tickets::revoke_ticket),
        )
        .route("/api/v1/shows", get(shows::list_shows))
        .route(
            "/api/v1/shows/{show_id}",
            put(shows::put_show)
                .get(shows::read_show)
                .delete(shows::delete_show),
        )
        .route(
            "/api/v1/shows/{show_id}/published",
            put(shows::put_published),
        )
        .route(
            "/api/v1/shows/{show_id}/poster",
            put(shows::put_poster).get(shows::read_poster),
        )
        .route("/api/v1/sessions", get(sessions::list_sessions))
        .route(
            "/api/v1/sessions/{session_id}",
            delete(sessions::end_session),
        )
        .route(
            "/api/v1/api-keys",
            get(api_keys::list_api_keys).post(api_keys::create_api_key),
        )
        .route(
            "/api/v1/api-keys/{key_id}",
            delete(api_keys::delete_api_key),
        )
        .route(
            "/api/v1/admin-users",
            get(admin_users::list_users).post(admin_users::create_user),
        )
        .route(
            "/api/v1/admin-users/{name}",
            patch(admin_users::patch_user).delete(admin_users::delete_user),
        )
        .route("/api/v1/audit", get(audit::list_audit))
        .route("/api/v1/dashboard", get(dashboard::read_dashboard))
        .route("/api/v1/cdns", get(cdns::list_cdns))
        .route(
            "/api/v1/cdns/{cdn_id}",
            put(cdns::put_cdn)
                .patch(cdns::patch_cdn)
                .get(cdns::read_cdn)
                .delete(cdns::delete_cdn),
        )
        .route("/api/v1/cdns/{cdn_id}/sign", post(cdns::sign_cdn_url))
        .route(
            "/api/v1/geoip",
            get(geoip::geoip_status)
                .put(geoip::upload_geoip)
                .layer(DefaultBodyLimit::max(
                    usize::try_from(state.config.geoip.max_bytes).unwrap_or(usize::MAX),
                )),
        )
        .route("/api/v1/geoip/reload", post(geoip::reload_geoip))
        .route("/api/v1/backup", post(crate::backup::backup_store))
        .route("/api/v1/playback", post(playback::admit_viewer))
        .route(
            "/api/v1/playback/{session_id}/heartbeat",
            post(playback::heartbeat),
        )
        .route("/api/v1/playback/{session_id}", delete(playback::leave))
        .route("/api/v1/playback/{session_id}/leave", post(playback::leave))
        .route("/watch/{token}", get(watch::open_watch_link))
        .route("/watch", get(watch::watch_page))
        .route("/assets/{file}", get(pages::asset))
        .route("/livez", get(ops::livez))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(media)
        .merge(crate::console::router(&state))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "handler panicked".into(),
            ))
        }))
        .layer(axum::middleware::from_fn(telemetry::observe))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
