//! Who is watching (scope `admin`): list live sessions, end one; each handler calls one action of
//! [`crate::service::admin::sessions`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use usher_core::ids::{SessionId, ShowId};

use crate::http::auth::{Authorized, EndSessions, Read};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::views::sessions::{SessionList, SessionView};
use crate::service::admin::sessions;
use crate::service::{Error, Result};
use crate::state::AppState;

/// Query of the session list.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Only the sessions of this show.
    #[param(value_type = Option<ShowId>)]
    show_id: Option<String>,
}

/// `GET /api/v1/sessions[?show_id=…]`.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    params(SessionsQuery),
    responses(
        (status = 200, description = "The sessions holding a seat.", body = SessionList),
        (status = 400, description = "`invalid_request`: `show_id` is not a show id, or the query has other members."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiQuery(q): ApiQuery<SessionsQuery>,
) -> Result<Json<SessionList>> {
    let show = q
        .show_id
        .map(|s| ShowId::parse(&s).map_err(|e| Error::InvalidRequest(format!("show_id: {e}"))))
        .transpose()?;
    let list = sessions::list_sessions(&state, &caller, show.as_ref()).await?;
    Ok(Json(SessionList {
        sessions: list.iter().map(SessionView::from).collect(),
    }))
}

/// `DELETE /api/v1/sessions/{id}`: the player stops at its next heartbeat; this node's origin refuses at
/// once, other nodes' within `http.media_lease_check_ms`.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{session_id}",
    tag = "sessions",
    params(("session_id" = SessionId, Path, description = "The session's id.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 404, description = "`session_unknown`: no such session holds a seat."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn end_session(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<EndSessions>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    sessions::end_session(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
