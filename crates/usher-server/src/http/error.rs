//! How a service [`Error`] answers over HTTP: every variant becomes an RFC 9457
//! `application/problem+json` answer with a status and a stable `code`.
//!
//! The map from variant to status and code is one exhaustive `match` without a `_` arm, so a new variant
//! does not compile until it is given a status. 5xx bodies are opaque: the cause rides in a response
//! extension ([`ErrorCause`]) that only the logging middleware reads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::service::{Code, Error};

/// The internal cause of a 5xx, for the log line of the request; never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Every `code` an error answer can carry, from [`Code`] (the API document lists them).
pub const CODES: &[&str] = Code::NAMES;

/// The codes whose answers carry `Retry-After`, read from the mapping below (through one example error
/// of each code), for the API document.
pub fn retry_after_codes() -> Vec<Code> {
    Code::ALL
        .iter()
        .copied()
        .filter(|c| Error::example(*c).problem().retry_after.is_some())
        .collect()
}

/// What an error answers: its status, stable code, title and detail for humans, extra members and the
/// seconds a client should wait before it retries.
#[derive(Debug)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable reason (`code` member), [`Error::code`].
    pub code: Code,
    /// A sentence for humans.
    pub title: &'static str,
    /// What exactly, when there is more to say (never for a 5xx).
    pub detail: Option<String>,
    /// Members beyond RFC 9457's (`starts_at`, `retry_after_s`, …).
    pub extra: Map<String, Value>,
    /// The `Retry-After` seconds, if the client should retry.
    pub retry_after: Option<u64>,
}

impl Error {
    /// How this error answers.
    pub fn problem(&self) -> Problem {
        let code = self.code();
        let p = |status, title| Problem {
            status,
            code,
            title,
            detail: None,
            extra: Map::new(),
            retry_after: None,
        };
        match self {
            Self::InvalidRequest(m) => {
                let mut pr = p(StatusCode::BAD_REQUEST, "The request is not valid.");
                pr.detail = Some(m.clone());
                pr
            }
            Self::PayloadTooLarge => p(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large.",
            ),
            Self::UnsupportedMediaType => p(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The request body must be application/json.",
            ),
            Self::Unauthorized => p(StatusCode::UNAUTHORIZED, "A valid API key is required."),
            Self::Forbidden(scope) => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "The API key lacks the scope this call needs.",
                );
                pr.detail = Some(format!("this call needs the `{scope}` scope"));
                pr
            }
            Self::RoleForbidden(role) => {
                let mut pr = p(StatusCode::FORBIDDEN, "Your role does not allow this.");
                pr.detail = Some(format!("the `{role}` role does not allow this call"));
                pr
            }
            Self::CsrfInvalid => p(
                StatusCode::FORBIDDEN,
                "The request lacks this session's CSRF token; reload the page and try again.",
            ),
            Self::PasswordChangeRequired => p(
                StatusCode::FORBIDDEN,
                "Change your password first (/admin/password).",
            ),
            Self::LoginFailed => p(StatusCode::UNAUTHORIZED, "Wrong user name or password."),
            Self::LoginThrottled { retry_after_s } => {
                let mut pr = p(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed logins; try again later.",
                );
                pr.retry_after = Some(*retry_after_s);
                pr
            }
            Self::Busy { retry_after_s } => {
                let mut pr = p(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests of this kind are under way; try again shortly.",
                );
                pr.retry_after = Some(*retry_after_s);
                pr
            }
            Self::RateLimited { retry_after_s } => {
                let mut pr = p(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts; try again in a moment.",
                );
                pr.extra
                    .insert("retry_after_s".into(), json!(retry_after_s));
                pr.retry_after = Some(*retry_after_s);
                pr
            }
            Self::UserExists => p(StatusCode::CONFLICT, "A user of that name exists."),
            Self::LastAdmin => p(
                StatusCode::CONFLICT,
                "At least one user must keep the admin role.",
            ),
            Self::ShowUnpublished => p(StatusCode::FORBIDDEN, "This show is not available yet."),
            Self::RouteNotFound => p(StatusCode::NOT_FOUND, "There is nothing at this address."),
            Self::MethodNotAllowed => p(
                StatusCode::METHOD_NOT_ALLOWED,
                "This method is not allowed here.",
            ),
            Self::NotFound(_) => p(StatusCode::NOT_FOUND, "No such record."),
            Self::UnknownShow(id) => {
                let mut pr = p(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The ticket names a show that does not exist.",
                );
                pr.detail = Some(format!("no show `{id}`"));
                pr
            }
            Self::TokenConflict { ticket_id } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "This token is already registered with other terms.",
                );
                pr.extra.insert("ticket_id".into(), json!(ticket_id));
                pr
            }
            Self::ShowHasTickets(n) => {
                let mut pr = p(StatusCode::CONFLICT, "Tickets still admit to this show.");
                pr.detail = Some(format!("{n} ticket(s) admit to this show"));
                pr
            }
            Self::StreamPathNested {
                other_show,
                other_path,
                inside,
            } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "The stream folder nests with another show's: one show's grants would open the other's media.",
                );
                pr.detail = Some(if *inside {
                    format!("stream_path lies inside show `{other_show}`'s folder `{other_path}`")
                } else {
                    format!("stream_path holds show `{other_show}`'s folder `{other_path}`")
                });
                pr
            }
            Self::NoTicket => p(
                StatusCode::UNAUTHORIZED,
                "Open your watch link to start watching.",
            ),
            Self::TicketUnknown => p(StatusCode::NOT_FOUND, "This ticket is not known."),
            Self::TicketRevoked => p(StatusCode::FORBIDDEN, "This ticket has been revoked."),
            Self::NotStarted { starts_at, now } => {
                let mut pr = p(StatusCode::FORBIDDEN, "The show has not started yet.");
                pr.extra
                    .insert("starts_at".into(), json!(starts_at.to_rfc3339()));
                pr.retry_after = Some(now.secs_until(*starts_at).max(1));
                pr
            }
            Self::Ended { ended_at } => {
                let mut pr = p(StatusCode::GONE, "This show has ended.");
                pr.extra
                    .insert("ended_at".into(), json!(ended_at.to_rfc3339()));
                pr
            }
            Self::TicketInUse { retry_after_s } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "This ticket is already playing on another device.",
                );
                pr.extra
                    .insert("retry_after_s".into(), json!(retry_after_s));
                pr.retry_after = Some(*retry_after_s);
                pr
            }
            Self::Superseded { by_device, at } => {
                let mut pr = p(StatusCode::CONFLICT, "Playback moved to another device.");
                pr.extra.insert("superseded_by".into(), json!(by_device));
                pr.extra
                    .insert("superseded_at".into(), json!(at.to_rfc3339()));
                pr
            }
            Self::SteeringSuperseded { by_device, at } => {
                let mut pr = p(StatusCode::GONE, "Playback moved to another device.");
                pr.extra.insert("superseded_by".into(), json!(by_device));
                pr.extra
                    .insert("superseded_at".into(), json!(at.to_rfc3339()));
                pr
            }
            Self::CdnBuiltIn(why) => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "Usher's own origin is always in the pool.",
                );
                pr.detail = Some((*why).to_owned());
                pr
            }
            Self::SigningRefused { field, detail, .. } => {
                let mut pr = p(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The CDN's signing configuration cannot be used by its scheme.",
                );
                pr.detail = Some(detail.clone());
                if let Some(f) = field {
                    pr.extra.insert("field".into(), json!(f));
                }
                pr
            }
            Self::CdnPoolEmpty => p(
                StatusCode::CONFLICT,
                "The change would leave no enabled CDN; enable another one first.",
            ),
            Self::SessionEnded => p(StatusCode::GONE, "This playback session has ended."),
            Self::SessionExpired => p(
                StatusCode::GONE,
                "This playback session expired; start again.",
            ),
            Self::SessionUnknown => p(StatusCode::NOT_FOUND, "This playback session is not known."),
            Self::SessionCloned => p(
                StatusCode::CONFLICT,
                "This ticket's session is playing in another player that copied its credentials; only one of them can play.",
            ),
            Self::SessionSecretRequired => p(
                StatusCode::UNAUTHORIZED,
                "This call needs the session's secret (the usher_seat cookie, the X-Usher-Session-Secret header, or the secret in the player URL).",
            ),
            Self::SessionSecretInvalid => {
                p(StatusCode::FORBIDDEN, "This is not the session's secret.")
            }
            Self::GeoBlocked { country } => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "This show is not available where you are.",
                );
                pr.detail = Some(match country {
                    Some(c) => format!("viewing from {c} is not allowed for this show"),
                    None => {
                        "viewing from an address of unknown location is not allowed for this show"
                            .into()
                    }
                });
                pr.extra.insert("country".into(), json!(country));
                pr
            }
            Self::GeoUnavailable => {
                let mut pr = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Your location cannot be checked right now.",
                );
                pr.retry_after = Some(30);
                pr
            }
            Self::GeoIpRefused(why) => {
                let mut pr = p(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "The GeoIP database was refused; the one serving stays.",
                );
                pr.detail = Some(why.clone());
                pr
            }
            Self::GrantRefused(why) => {
                let mut pr = p(StatusCode::FORBIDDEN, "This media grant is not valid.");
                pr.detail = Some((*why).to_owned());
                pr
            }
            Self::KeyRefused(_) => p(
                StatusCode::FORBIDDEN,
                "This player may not decrypt the show now: its session does not hold its seat (the code says why).",
            ),
            Self::KeyConflict => p(
                StatusCode::CONFLICT,
                "A content key of this id is registered with another key or stream folder.",
            ),
            Self::IdempotencyKeyReused => p(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This Idempotency-Key was used for another request (method, path or body); use a new key for a new request.",
            ),
            Self::IdempotencyInProgress => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "The first request with this Idempotency-Key has not answered yet; retry after Retry-After seconds.",
                );
                pr.retry_after = Some(1);
                pr
            }
            // RFC 8628 section 3.5: 400 with the error's name; `error` repeats it for OAuth clients
            Self::AuthorizationPending { interval_s } | Self::SlowDown { interval_s } => {
                let mut pr = p(
                    StatusCode::BAD_REQUEST,
                    if matches!(self, Self::SlowDown { .. }) {
                        "Polled too early: wait `interval` seconds between polls (it grew by 5)."
                    } else {
                        "The code is not approved yet: poll again after `interval` seconds."
                    },
                );
                pr.extra.insert("error".into(), json!(code.as_str()));
                pr.extra.insert("interval".into(), json!(interval_s));
                pr
            }
            Self::ExpiredToken => {
                let mut pr = p(
                    StatusCode::BAD_REQUEST,
                    "This sign-in code lapsed or was used: show a new one.",
                );
                pr.extra.insert("error".into(), json!(code.as_str()));
                pr
            }
            Self::TvCodeUnknown => p(
                StatusCode::NOT_FOUND,
                "No TV is waiting with this code: check it on the TV's screen (codes lapse after a few minutes and work once).",
            ),
            Self::BackupUnsupported => p(
                StatusCode::CONFLICT,
                "This server keeps its data in Redis: back it up from a replica with redis-cli --rdb (docs/redis.md).",
            ),
            Self::OriginPullRefused => p(
                StatusCode::FORBIDDEN,
                "Pulling from the origin needs a CDN's origin-pull secret in X-Usher-Origin-Secret.",
            ),
            Self::StoreUnavailable(_) => {
                let mut pr = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is briefly unavailable.",
                );
                pr.retry_after = Some(2);
                pr
            }
            Self::ApiKeyInUse => p(
                StatusCode::CONFLICT,
                "This API key makes the request; delete it with another admin key.",
            ),
            Self::Timeout => {
                let mut pr = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The request took too long.",
                );
                pr.retry_after = Some(2);
                pr
            }
            Self::Internal(_) => p(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            ),
            Self::UploadsDisabled => p(
                StatusCode::NOT_FOUND,
                "Uploads are not enabled on this server (uploads.enabled).",
            ),
            Self::UploadOffsetMismatch { expected } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "The upload is at another offset: ask with HEAD and resume from there.",
                );
                pr.detail = Some(format!("the upload is at offset {expected}"));
                pr.extra.insert("offset".into(), json!(expected));
                pr
            }
            Self::UploadBusy(why) => {
                let mut pr = p(
                    StatusCode::LOCKED,
                    "The upload is busy; try again when the other request or the packaging is done.",
                );
                pr.detail = Some((*why).to_owned());
                pr
            }
            Self::TusVersionUnsupported => p(
                StatusCode::PRECONDITION_FAILED,
                "Only version 1.0.0 of the tus protocol is supported.",
            ),
            Self::UploadType(why) => {
                let mut pr = p(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "This kind of upload is not taken.",
                );
                pr.detail = Some(why.clone());
                pr
            }
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.problem().status
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let pr = self.problem();
        let code = pr.code.as_str();
        let mut body = Map::new();
        body.insert("type".into(), json!(format!("urn:usher:problem:{code}")));
        body.insert("title".into(), json!(pr.title));
        body.insert("status".into(), json!(pr.status.as_u16()));
        body.insert("code".into(), json!(code));
        if let Some(d) = pr.detail {
            body.insert("detail".into(), json!(d));
        }
        body.extend(pr.extra);
        let mut res = (pr.status, serde_json::to_string(&body).unwrap_or_default()).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = pr.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if matches!(self, Self::TusVersionUnsupported) {
            res.headers_mut()
                .insert("tus-version", HeaderValue::from_static("1.0.0"));
        }
        if matches!(self, Self::Unauthorized) {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if pr.status.is_server_error() {
            res.extensions_mut().insert(ErrorCause(self.to_string()));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_and_every_listed_code_answers() {
        for (code, name) in Code::ALL.iter().zip(CODES) {
            let e = Error::example(*code);
            assert_eq!(e.code().as_str(), *name);
            assert!(e.status().as_u16() >= 400, "{name}");
        }
    }

    #[test]
    fn retry_after_comes_from_the_mapping() {
        let codes: Vec<&str> = retry_after_codes().iter().map(|c| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "not_started",
                "ticket_in_use",
                "geo_unavailable",
                "store_unavailable",
                "timeout",
                "rate_limited",
                "idempotency_in_progress"
            ]
        );
    }
}
