//! The HTTP surface: one file per resource under `http/`, assembled by [`router`]. Each handler parses its
//! request, calls one service function and answers with a type of [`views`], which its `#[utoipa::path]`
//! names too.
//!
//! Routes are registered in [`routes`] only, and only through `utoipa_axum::routes!`, which reads each
//! handler's path and method from its `#[utoipa::path]` attribute: the router and the API document
//! (finished by [`crate::openapi::finish`]) come from the same list, and `tests/it/openapi.rs` fails when they differ.

pub mod admin_users;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod cdns;
pub mod dashboard;
pub mod docs;
pub mod edge;
pub mod error;
pub mod extract;
pub mod geoip;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod ops;
pub mod origin;
pub mod playback;
pub mod sessions;
pub mod shows;
pub mod tickets;
pub mod tv;
pub mod uploads;
pub mod views;
pub mod watch;
pub mod webhooks;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt as _};
use utoipa_axum::routes;

use crate::openapi::{self, ApiDoc};
use crate::service::Error;
use crate::settings::HttpSettings;
use crate::state::AppState;
use crate::telemetry;

/// Every route with its documentation, and the layers that belong to single routes (CORS on media, the
/// GeoIP upload's body limit). `http` and `geoip_max_bytes` only size those layers.
pub fn routes(http: &HttpSettings, geoip_max_bytes: u64) -> OpenApiRouter<AppState> {
    use utoipa::OpenApi as _;
    let media = OpenApiRouter::new()
        .routes(routes!(origin::master_playlist))
        .routes(routes!(origin::steering_manifest))
        .routes(routes!(origin::media))
        .routes(routes!(origin::pull))
        .routes(routes!(keys::content_key))
        .layer(origin::cors_layer(&http.cors_origins));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tickets::register_ticket, tickets::search_tickets))
        .routes(routes!(tickets::register_batch))
        .routes(routes!(tickets::ticket_status))
        .routes(routes!(tickets::revoke_ticket))
        .routes(routes!(tickets::erase_personal_data))
        .routes(routes!(shows::list_shows))
        .routes(routes!(
            shows::put_show,
            shows::read_show,
            shows::delete_show
        ))
        .routes(routes!(shows::put_published))
        .routes(routes!(shows::put_poster, shows::read_poster))
        .routes(routes!(ingest::read_ingest))
        .routes(routes!(ingest::rotate_stream_key))
        .routes(routes!(keys::register_content_key))
        .routes(routes!(
            uploads::tus_options,
            uploads::create_upload,
            uploads::list_uploads
        ))
        .routes(routes!(
            uploads::read_upload,
            uploads::upload_offset,
            uploads::append_upload,
            uploads::delete_upload
        ))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::end_session))
        .routes(routes!(api_keys::list_api_keys, api_keys::create_api_key))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(admin_users::list_users, admin_users::create_user))
        .routes(routes!(admin_users::patch_user, admin_users::delete_user))
        .routes(routes!(admin_users::unlock_user))
        .routes(routes!(audit::list_audit))
        .routes(routes!(dashboard::read_dashboard))
        .routes(routes!(cdns::list_cdns))
        .routes(routes!(
            cdns::put_cdn,
            cdns::patch_cdn,
            cdns::read_cdn,
            cdns::delete_cdn
        ))
        .routes(
            routes!(geoip::geoip_status, geoip::upload_geoip).layer(DefaultBodyLimit::max(
                usize::try_from(geoip_max_bytes).unwrap_or(usize::MAX),
            )),
        )
        .routes(routes!(cdns::sign_cdn_url))
        .routes(routes!(geoip::reload_geoip))
        .routes(routes!(crate::backup::backup_store))
        .routes(routes!(webhooks::list_webhooks, webhooks::create_webhook))
        .routes(routes!(
            webhooks::read_webhook,
            webhooks::patch_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::resend_delivery))
        .routes(routes!(playback::admit_viewer))
        .routes(routes!(playback::heartbeat))
        .routes(routes!(playback::leave))
        .routes(routes!(playback::leave_beacon))
        .routes(routes!(watch::open_watch_link))
        .routes(routes!(watch::watch_page))
        .routes(routes!(tv::create_tv_code))
        .routes(routes!(tv::poll_tv_code))
        .routes(routes!(tv::approve_tv_code))
        .routes(routes!(tv::tv_page))
        .routes(routes!(tv::activate_page))
        .routes(routes!(assets::asset))
        .routes(routes!(docs::openapi_document))
        .routes(routes!(docs::reference_page))
        .routes(routes!(ops::livez))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .merge(media)
}

/// The finished API document of [`routes`], as `GET /api/v1/openapi.json` serves it.
pub fn api_document() -> openapi::Document {
    openapi::finish(routes(&HttpSettings::default(), 0).into_openapi())
}

/// Every route of the service, with its middleware. A free function so tests can build it directly.
pub fn router(state: AppState) -> Router {
    let http = &state.config.http;
    let timeout = Duration::from_secs(http.request_timeout_s);
    let body_limit = http.max_body_bytes;
    let (router, api) = routes(http, state.config.geoip.max_bytes).split_for_parts();
    let document = openapi::finish(api);
    // the console's HTML pages are not API operations: they stay out of the API document (their routes
    // are in `console::route_table`, which the authorization tests walk)
    // one stack, composed once and boxed once per route: `Router::layer` boxes each layer it is given
    // around every route, and a request clones every box of its route (issue 16: a dozen allocations
    // per request). Outermost first; the layers that read `MatchedPath` (telemetry, `front`'s guard) must
    // stay route layers, inside the router.
    let edge = ServiceBuilder::new()
        .layer(edge::hsts(&state.config))
        .layer(edge::frame_options())
        .layer(edge::nosniff())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(axum::middleware::from_fn(telemetry::observe))
        .layer(CatchPanicLayer::custom(|_| {
            Error::Internal("handler panicked".into()).into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<AppState>, req: Request, next: Next| {
                front(timeout, state, req, next)
            },
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(document));
    router
        .merge(crate::console::router(&state))
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(edge)
        .with_state(state)
}

/// The checks in front of every route, in one middleware (each `from_fn` layer boxes its future and
/// clones the rest of the stack on every request: three were a few per cent of `/livez`): the time
/// limit, and inside it the guard ([`edge::screen`]: the console login's rate limit, the public routes'
/// body limit) and then the idempotency layer ([`idempotency::remember`]).
///
/// The time limit answers 503 `timeout` (a problem, like every error) when a request runs longer than
/// `limit` (a tus `PATCH`, whose body may take hours, has [`uploads::PATCH_TIME_LIMIT`]).
async fn front(limit: Duration, state: AppState, req: Request, next: Next) -> Response {
    let limit = if uploads::is_upload_patch(req.method(), req.uri().path()) {
        uploads::PATCH_TIME_LIMIT
    } else {
        limit
    };
    let checked = async move {
        match edge::screen(&state, req).await {
            Ok(req) => idempotency::remember(State(state), req, next).await,
            Err(stopped) => stopped,
        }
    };
    match tokio::time::timeout(limit, checked).await {
        Ok(res) => res,
        Err(_) => Error::Timeout.into_response(),
    }
}
