//! The viewer API: admit, heartbeat, leave.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use serde::Deserialize;
use usher_core::ids::{DeviceId, SessionId};

use axum::http::HeaderMap;

use crate::http::extract::{
    ApiPath, ClientIp, DEVICE_COOKIE, OptionalJson, SeatHead, SecretVia, TICKET_COOKIE,
    seat_cookie, seat_secret, session_and_secret,
};
use crate::http::views::playback::{Admission, HeartbeatAnswer, WaitingView};
use crate::service::viewer;
use crate::service::viewer::{AdmitOutcome, Device};
use crate::service::{Error, Result};
use crate::state::AppState;

/// Body of an admit: empty for the watch page (the ticket is in the cookie), a token for apps.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmitBody {
    /// The ticket's token (apps); without it, the `usher_ticket` cookie that the watch link set.
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
#[utoipa::path(
    post,
    path = "/api/v1/playback",
    tag = "playback",
    request_body(content = Option<AdmitBody>, description = "Empty for the watch page (the ticket is in the `usher_ticket` cookie), or `{\"token\": …}` for apps."),
    params(
        ("X-Usher-Device" = Option<DeviceId>, Header, description = "The app's device id; browsers use the `usher_device` cookie, made on the first admit."),
        ("X-Usher-Device-Label" = Option<String>, Header, description = "A label for humans (\"Living room TV\"); else one is made from `User-Agent`."),
        ("X-Usher-Session-Secret" = Option<String>, Header, description = "An app's current session secret: with the same device id, the admit re-attaches to that session instead of taking a seat (the watch page's `usher_seat` cookie does the same for a reload)."),
    ),
    responses(
        (status = 202, description = "Waiting: the show is at its capacity or admit rate (doors-open), and this ticket has a place in its waiting room, first come, first served; ask again (the same call) after `retry_after_s` (also `Retry-After`). Tickets already playing never wait.", body = WaitingView, headers(
            ("Retry-After" = u64, description = "Seconds until the player asks again."),
        )),
        (status = 201, description = "Admitted: the session, its secret, grants and playlist URL. The watch page (ticket from the cookie) gets the secret in the HttpOnly `usher_seat` cookie; an app (`{\"token\": …}`) in `session_secret` and inside `playlist_url` (for a native player, which then renews by its steering reloads). A new device also gets the `usher_device` cookie.", body = Admission),
        (status = 400, description = "`invalid_request`: the body is not empty nor `{\"token\": …}`, or `X-Usher-Device` is not a device id."),
        (status = 401, description = "`no_ticket`: no token and no ticket cookie."),
        (status = 403, description = "`session_secret_invalid`: `X-Usher-Session-Secret` cannot be a session secret; `ticket_revoked`: refunded or voided; `show_unpublished`: the show is taken off (`PUT /api/v1/shows/{id}/published`); `not_started`: the window opens at `starts_at` (see `Retry-After`); `geo_blocked`: not available where the viewer is (`country`)."),
        (status = 404, description = "`ticket_unknown`: no such ticket."),
        (status = 409, description = "`ticket_in_use`: every seat is taken under `oldest_wins`; retry after `retry_after_s`."),
        (status = 410, description = "`ended`: the window closed at `ended_at`."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes`."),
        (status = 429, description = "`rate_limited`: this address looked up too many unknown tickets, or this ticket was admitted too often; retry after `Retry-After` seconds (`retry_after_s`)."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds; `geo_unavailable`: the show has Geo rules and no GeoIP database is loaded yet."),
    ),
)]
pub async fn admit_viewer(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    device: Device,
    headers: HeaderMap,
    jar: CookieJar,
    OptionalJson(body): OptionalJson<AdmitBody>,
) -> Result<Response> {
    let body = body.unwrap_or_default();
    let app = body.token.is_some();
    let token = match body.token {
        Some(t) => t,
        None => jar
            .get(TICKET_COOKIE)
            .map(|c| c.value().to_owned())
            .ok_or(Error::NoTicket)?,
    };
    let presented = seat_secret(&SeatHead::of(&headers), None, None)?;
    let result = viewer::admit(
        &state,
        &token,
        &device,
        presented.as_ref().map(|p| &p.secret),
        client,
    )
    .await;
    let outcome = match &result {
        Ok(AdmitOutcome::Admitted(a)) if a.reattached => "reattached",
        Ok(AdmitOutcome::Admitted(_)) => "admitted",
        Ok(AdmitOutcome::Waiting(_)) => "waiting",
        Err(e) => e.code().as_str(),
    };
    metrics::counter!("usher_admits_total", "outcome" => outcome).increment(1);
    let admission = match result? {
        AdmitOutcome::Admitted(a) => a,
        AdmitOutcome::Waiting(w) => {
            // a place in the show's waiting room: not an admit nor a refusal on the dashboard
            let mut res = (StatusCode::ACCEPTED, Json(WaitingView::from(w))).into_response();
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(w.retry_after_s),
            );
            return Ok(res);
        }
    };
    state.outcomes.note(state.store.now(), outcome);
    tracing::info!(session.tag = %state.hasher.session_tag(admission.session_id.as_str()), device.fresh = device.fresh, lease_expires_at = %admission.lease_expires_at.to_rfc3339(), "admitted");
    let mut jar = if device.fresh {
        jar.add(device_cookie(&state, &device))
    } else {
        jar
    };
    let cookie = (!app).then(|| seat_cookie(&state, &admission.session_id, &admission.secret));
    let mut view = Admission::from(admission);
    if let Some(cookie) = cookie {
        // the watch page: the secret only in the HttpOnly cookie, which the page's requests (and a
        // native player's on the same site) carry
        jar = jar.add(cookie);
        view.session_secret = None;
        view.playlist_url = format!("/hls/{}/master.m3u8", view.session_id);
    }
    Ok((StatusCode::CREATED, jar, Json(view)).into_response())
}

/// `POST /api/v1/playback/{id}/heartbeat`: renews the lease and returns fresh grants.
#[utoipa::path(
    post,
    path = "/api/v1/playback/{session_id}/heartbeat",
    tag = "playback",
    params(
        ("session_id" = SessionId, Path, description = "The session's id."),
        ("X-Usher-Session-Secret" = Option<String>, Header, description = "The session's current secret (apps; the watch page sends its `usher_seat` cookie)."),
    ),
    responses(
        (status = 200, description = "Renewed (`ok`) with fresh grants and the session's next secret (in `session_secret`, or in the `usher_seat` cookie when the cookie brought it), or `degraded` while the store is unreachable (keep the secret).", body = HeartbeatAnswer),
        (status = 401, description = "`session_secret_required`: no session secret was sent."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes` (this call reads none)."),
        (status = 403, description = "`ticket_revoked`: the ticket was revoked; `geo_blocked`: the viewer is now somewhere refused (the session ends); `session_secret_invalid`: not the session's secret."),
        (status = 404, description = "`session_unknown`: no such session."),
        (status = 409, description = "`superseded`: playback moved to another device (`superseded_by`, `superseded_at`); `session_cloned`: another player holds a copy of this session's credentials and renewed first (this one must stop)."),
        (status = 410, description = "`ended`: the window closed; `session_ended`: left or ended by an admin; `session_expired`: no heartbeat in time, admit again."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: past the outage grace; retry after `Retry-After` seconds."),
    ),
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(id): ApiPath<String>,
    head: SeatHead,
) -> Result<Response> {
    let (id, result) = match session_and_secret(&id, &head, None) {
        Ok((id, presented)) => {
            let result = viewer::heartbeat(&state, &id, &presented.secret, client)
                .await
                .map(|h| (h, presented.via));
            (Some(id), result)
        }
        Err(e) => (None, Err(e)),
    };
    let outcome = match &result {
        Ok(_) => "renewed",
        Err(e) => e.code().as_str(),
    };
    metrics::counter!("usher_heartbeats_total", "outcome" => outcome).increment(1);
    let (h, via) = result?;
    let mut answer = HeartbeatAnswer::from(h);
    if via == SecretVia::Cookie
        && let Some(id) = id
        && let Some(next) = answer.session_secret.take()
    {
        let next = usher_core::session_secret::SessionSecret::parse(&next)
            .ok_or_else(|| Error::Internal("a fresh secret that is no secret".into()))?;
        // a session id and a secret are URL-safe text: the header never fails (the jar this replaced
        // dropped such a cookie silently, which would have left the page with a spent secret)
        let cookie = seat_cookie(&state, &id, &next).encoded().to_string();
        let cookie = axum::http::HeaderValue::try_from(cookie)
            .map_err(|e| Error::Internal(format!("a seat cookie that is no header: {e}")))?;
        return Ok(([(axum::http::header::SET_COOKIE, cookie)], Json(answer)).into_response());
    }
    Ok(Json(answer).into_response())
}

/// `DELETE /api/v1/playback/{id}`: frees the seat at once.
#[utoipa::path(
    delete,
    path = "/api/v1/playback/{session_id}",
    tag = "playback",
    params(
        ("session_id" = SessionId, Path, description = "The session's id."),
        ("X-Usher-Session-Secret" = Option<String>, Header, description = "The session's current secret (apps; the watch page sends its `usher_seat` cookie)."),
    ),
    responses(
        (status = 204, description = "Left: the seat is free."),
        (status = 401, description = "`session_secret_required`: no session secret was sent."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes` (this call reads none)."),
        (status = 403, description = "`session_secret_invalid`: not the session's secret."),
        (status = 404, description = "`session_unknown`: no such session holds a seat."),
        (status = 409, description = "`session_cloned`: a superseded secret; the session plays on for the player holding the current one."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn leave(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(id): ApiPath<String>,
    head: SeatHead,
) -> Result<StatusCode> {
    let (id, presented) = session_and_secret(&id, &head, None)?;
    viewer::leave(&state, &id, &presented.secret, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/playback/{id}/leave`: the same as `DELETE`, for `navigator.sendBeacon`, which can only POST.
#[utoipa::path(
    post,
    path = "/api/v1/playback/{session_id}/leave",
    tag = "playback",
    params(("session_id" = SessionId, Path, description = "The session's id.")),
    responses(
        (status = 204, description = "Left: the seat is free."),
        (status = 401, description = "`session_secret_required`: no session secret was sent (the beacon carries the `usher_seat` cookie)."),
        (status = 413, description = "`payload_too_large`: the body is larger than `http.max_public_body_bytes` (this call reads none)."),
        (status = 403, description = "`session_secret_invalid`: not the session's secret."),
        (status = 404, description = "`session_unknown`: no such session holds a seat."),
        (status = 409, description = "`session_cloned`: a superseded secret; the session plays on for the player holding the current one."),
        (status = 429, description = "`rate_limited`: this address presented too many secrets that were never their session's; retry after `Retry-After` seconds."),
        (status = 503, description = "`store_unavailable`: retry after `Retry-After` seconds."),
    ),
)]
pub async fn leave_beacon(
    state: State<AppState>,
    client: ClientIp,
    id: ApiPath<String>,
    head: SeatHead,
) -> Result<StatusCode> {
    leave(state, client, id, head).await
}
