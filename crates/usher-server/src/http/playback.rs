//! The viewer API: admit, heartbeat, leave.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use serde_json::Value;
use usher_core::ids::SessionId;
use usher_core::lease::EndReason;

use crate::error::{ApiError, ApiResult};
use crate::extract::{
    ApiPath, ClientIp, DEVICE_COOKIE, Device, TICKET_COOKIE, body_error, parse_json,
};
use crate::state::AppState;
use crate::viewer;

/// Body of an admit: empty for the watch page (the ticket is in the cookie), a token for apps.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AdmitBody {
    token: Option<String>,
}

/// The long-lived device cookie.
pub fn device_cookie(state: &AppState, device: &Device) -> Cookie<'static> {
    Cookie::build((DEVICE_COOKIE, device.id.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .max_age(time::Duration::days(400))
        .build()
}

/// `POST /api/v1/playback`: 201 with the session, its heartbeat interval, grants and playlist URL.
pub async fn admit_viewer(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    device: Device,
    jar: CookieJar,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(body_error)?;
    let body: AdmitBody = if body.iter().all(u8::is_ascii_whitespace) {
        AdmitBody::default()
    } else {
        parse_json(&body)?
    };
    let token = match body.token {
        Some(t) => t,
        None => jar
            .get(TICKET_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(ApiError::NoTicket)?,
    };
    let result = viewer::admit(&state, &token, &device, client).await;
    let outcome = match &result {
        Ok(a) if a.reattached => "reattached",
        Ok(_) => "admitted",
        Err(e) => e.code(),
    };
    metrics::counter!("usher_admits_total", "outcome" => outcome).increment(1);
    state.outcomes.note(state.store.now(), outcome);
    let admission = result?;
    tracing::info!(session.id = %admission.session_id, device.fresh = device.fresh, lease_expires_at = %admission.lease_expires_at.to_rfc3339(), "admitted");
    let jar = if device.fresh {
        jar.add(device_cookie(&state, &device))
    } else {
        jar
    };
    Ok((StatusCode::CREATED, jar, Json(admission.body)).into_response())
}

fn session_id(id: &str) -> ApiResult<SessionId> {
    SessionId::parse(id).map_err(|_| ApiError::SessionUnknown)
}

/// `POST /api/v1/playback/{id}/heartbeat`: renews the lease and returns fresh grants.
pub async fn heartbeat(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let result = viewer::heartbeat(&state, &session_id(&id)?, client).await;
    let outcome = match &result {
        Ok(_) => "renewed",
        Err(e) => e.code(),
    };
    metrics::counter!("usher_heartbeats_total", "outcome" => outcome).increment(1);
    result.map(Json)
}

/// `DELETE /api/v1/playback/{id}` and `POST /api/v1/playback/{id}/leave` (for `sendBeacon`): frees the
/// seat at once.
pub async fn leave(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = session_id(&id)?;
    let now = state.store.now();
    if state
        .store
        .end_session(&id, EndReason::Left { at: now })
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::SessionUnknown)
    }
}
