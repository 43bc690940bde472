//! The dashboard (`GET /api/v1/dashboard`): the figures of [`crate::service::admin::dashboard`].

use axum::Json;
use axum::extract::State;

use crate::http::auth::{Authorized, Read};
use crate::http::views::dashboard::Dashboard;
use crate::service::Result;
use crate::service::admin::dashboard;
use crate::state::AppState;

/// `GET /api/v1/dashboard`.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard",
    tag = "ops",
    responses((status = 200, description = "Live viewers per show, the last hour's admits and refusals, CDN health and the GeoIP database's age.", body = Dashboard)),
    security(("bearer" = ["admin"])),
)]
pub async fn read_dashboard(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<Dashboard>> {
    let d = dashboard::dashboard(&state, &caller).await?;
    Ok(Json(Dashboard::from(&d)))
}
