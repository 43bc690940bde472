//! Who is watching (scope `admin`): list live sessions, end one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::ids::{SessionId, ShowId};
use usher_core::lease::EndReason;
use usher_core::store::SessionInfo;

use usher_core::admin::Permission;

use crate::http::auth::{Authorized, EndSessions, Read};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::openapi::schemas::SessionList;
use crate::service::audit;
use crate::service::auth::Caller;
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

/// The JSON view of a live session.
pub fn session_view(s: &SessionInfo) -> Value {
    json!({
        "session_id": s.session_id,
        "ticket_id": s.ticket_id,
        "show_id": s.show_id,
        "device_label": s.device_label,
        "started_at": s.created_at.to_rfc3339(),
        "last_heartbeat_at": s.renewed_at.to_rfc3339(),
        "expires_at": s.expires_at.to_rfc3339(),
    })
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
    _caller: Authorized<Read>,
    ApiQuery(q): ApiQuery<SessionsQuery>,
) -> Result<Json<Value>> {
    let show = q
        .show_id
        .map(|s| ShowId::parse(&s).map_err(|e| Error::InvalidRequest(format!("show_id: {e}"))))
        .transpose()?;
    let sessions = state.store.sessions(show.as_ref()).await?;
    Ok(Json(
        json!({"sessions": sessions.iter().map(session_view).collect::<Vec<_>>()}),
    ))
}

/// Ends a live session: the player stops at its next heartbeat, the origin refuses at once.
///
/// # Errors
/// `session_unknown`; `forbidden`.
pub async fn stop_session(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::EndSessions)?;
    let id = SessionId::parse(id).map_err(|_| Error::SessionUnknown)?;
    let now = state.store.now();
    if state
        .store
        .end_session(&id, EndReason::EndedByAdmin { at: now })
        .await?
    {
        tracing::info!(session.id = %id, "session ended by admin");
        audit::record(state, caller, "session.end", &format!("session:{id}"), "").await;
        Ok(())
    } else {
        Err(Error::SessionUnknown)
    }
}

/// `DELETE /api/v1/sessions/{id}`: the player stops at its next heartbeat, the origin refuses at once.
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
    stop_session(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
