//! How a service [`Error`] answers over HTTP: every variant becomes an RFC 9457
//! `application/problem+json` answer with a status and a stable `code`.
//!
//! The map from variant to status and code is one exhaustive `match` without a `_` arm, so a new variant
//! does not compile until it is given a status. 5xx bodies are opaque: the cause rides in a response
//! extension ([`ErrorCause`]) that only the logging middleware reads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::service::Error;

/// The internal cause of a 5xx, for the log line of the request; never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Every `code` an error answer can carry (the API document lists them; a test checks the list).
pub const CODES: &[&str] = &[
    "invalid_request",
    "payload_too_large",
    "unsupported_media_type",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "show_unknown",
    "ticket_unknown",
    "api_key_unknown",
    "cdn_unknown",
    "media_unknown",
    "token_conflict",
    "show_has_tickets",
    "api_key_in_use",
    "no_ticket",
    "ticket_revoked",
    "not_started",
    "ended",
    "ticket_in_use",
    "superseded",
    "cdn_builtin",
    "cdn_pool_empty",
    "session_ended",
    "session_expired",
    "session_unknown",
    "geo_blocked",
    "geo_unavailable",
    "geoip_refused",
    "grant_refused",
    "origin_pull_refused",
    "store_unavailable",
    "timeout",
    "internal",
    "csrf_invalid",
    "password_change_required",
    "login_failed",
    "rate_limited",
    "user_exists",
    "user_unknown",
    "last_admin",
    "show_unpublished",
    "poster_unknown",
];

/// What an error answers: its status, stable code, title and detail for humans, extra members and the
/// seconds a client should wait before it retries.
#[derive(Debug)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable reason (`code` member).
    pub code: &'static str,
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
        let p = |status, code, title| Problem {
            status,
            code,
            title,
            detail: None,
            extra: Map::new(),
            retry_after: None,
        };
        match self {
            Self::InvalidRequest(m) => {
                let mut pr = p(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The request is not valid.",
                );
                pr.detail = Some(m.clone());
                pr
            }
            Self::PayloadTooLarge => p(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            ),
            Self::UnsupportedMediaType => p(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "The request body must be application/json.",
            ),
            Self::Unauthorized => p(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid API key is required.",
            ),
            Self::Forbidden(scope) => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "The API key lacks the scope this call needs.",
                );
                pr.detail = Some(format!("this call needs the `{scope}` scope"));
                pr
            }
            Self::RoleForbidden(role) => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Your role does not allow this.",
                );
                pr.detail = Some(format!("the `{role}` role does not allow this call"));
                pr
            }
            Self::CsrfInvalid => p(
                StatusCode::FORBIDDEN,
                "csrf_invalid",
                "The request lacks this session's CSRF token; reload the page and try again.",
            ),
            Self::PasswordChangeRequired => p(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "Change your password first (/admin/password).",
            ),
            Self::LoginFailed => p(
                StatusCode::UNAUTHORIZED,
                "login_failed",
                "Wrong user name or password.",
            ),
            Self::LoginThrottled => {
                let mut pr = p(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many failed logins; try again later.",
                );
                pr.retry_after = Some(900);
                pr
            }
            Self::UserExists => p(
                StatusCode::CONFLICT,
                "user_exists",
                "A user of that name exists.",
            ),
            Self::LastAdmin => p(
                StatusCode::CONFLICT,
                "last_admin",
                "At least one user must keep the admin role.",
            ),
            Self::ShowUnpublished => p(
                StatusCode::FORBIDDEN,
                "show_unpublished",
                "This show is not available yet.",
            ),
            Self::RouteNotFound => p(
                StatusCode::NOT_FOUND,
                "not_found",
                "There is nothing at this address.",
            ),
            Self::MethodNotAllowed => p(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This method is not allowed here.",
            ),
            Self::NotFound(code) => p(StatusCode::NOT_FOUND, code, "No such record."),
            Self::UnknownShow(id) => {
                let mut pr = p(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "show_unknown",
                    "The ticket names a show that does not exist.",
                );
                pr.detail = Some(format!("no show `{id}`"));
                pr
            }
            Self::TokenConflict { ticket_id } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "token_conflict",
                    "This token is already registered with other terms.",
                );
                pr.extra.insert("ticket_id".into(), json!(ticket_id));
                pr
            }
            Self::ShowHasTickets(n) => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "show_has_tickets",
                    "Tickets still admit to this show.",
                );
                pr.detail = Some(format!("{n} ticket(s) admit to this show"));
                pr
            }
            Self::NoTicket => p(
                StatusCode::UNAUTHORIZED,
                "no_ticket",
                "Open your watch link to start watching.",
            ),
            Self::TicketUnknown => p(
                StatusCode::NOT_FOUND,
                "ticket_unknown",
                "This ticket is not known.",
            ),
            Self::TicketRevoked => p(
                StatusCode::FORBIDDEN,
                "ticket_revoked",
                "This ticket has been revoked.",
            ),
            Self::NotStarted { starts_at, now } => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "not_started",
                    "The show has not started yet.",
                );
                pr.extra
                    .insert("starts_at".into(), json!(starts_at.to_rfc3339()));
                pr.retry_after = Some(now.secs_until(*starts_at).max(1));
                pr
            }
            Self::Ended { ended_at } => {
                let mut pr = p(StatusCode::GONE, "ended", "This show has ended.");
                pr.extra
                    .insert("ended_at".into(), json!(ended_at.to_rfc3339()));
                pr
            }
            Self::TicketInUse { retry_after_s } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "ticket_in_use",
                    "This ticket is already playing on another device.",
                );
                pr.extra
                    .insert("retry_after_s".into(), json!(retry_after_s));
                pr.retry_after = Some(*retry_after_s);
                pr
            }
            Self::Superseded { by_device, at } => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "superseded",
                    "Playback moved to another device.",
                );
                pr.extra.insert("superseded_by".into(), json!(by_device));
                pr.extra
                    .insert("superseded_at".into(), json!(at.to_rfc3339()));
                pr
            }
            Self::SteeringSuperseded { by_device, at } => {
                let mut pr = p(
                    StatusCode::GONE,
                    "superseded",
                    "Playback moved to another device.",
                );
                pr.extra.insert("superseded_by".into(), json!(by_device));
                pr.extra
                    .insert("superseded_at".into(), json!(at.to_rfc3339()));
                pr
            }
            Self::CdnBuiltIn(why) => {
                let mut pr = p(
                    StatusCode::CONFLICT,
                    "cdn_builtin",
                    "Usher's own origin is always in the pool.",
                );
                pr.detail = Some((*why).to_owned());
                pr
            }
            Self::CdnPoolEmpty => p(
                StatusCode::CONFLICT,
                "cdn_pool_empty",
                "The change would leave no enabled CDN; enable another one first.",
            ),
            Self::SessionEnded => p(
                StatusCode::GONE,
                "session_ended",
                "This playback session has ended.",
            ),
            Self::SessionExpired => p(
                StatusCode::GONE,
                "session_expired",
                "This playback session expired; start again.",
            ),
            Self::SessionUnknown => p(
                StatusCode::NOT_FOUND,
                "session_unknown",
                "This playback session is not known.",
            ),
            Self::GeoBlocked { country } => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "geo_blocked",
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
                    "geo_unavailable",
                    "Your location cannot be checked right now.",
                );
                pr.retry_after = Some(30);
                pr
            }
            Self::GeoIpRefused(why) => {
                let mut pr = p(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "geoip_refused",
                    "The GeoIP database was refused; the one serving stays.",
                );
                pr.detail = Some(why.clone());
                pr
            }
            Self::GrantRefused(why) => {
                let mut pr = p(
                    StatusCode::FORBIDDEN,
                    "grant_refused",
                    "This media grant is not valid.",
                );
                pr.detail = Some((*why).to_owned());
                pr
            }
            Self::BackupUnsupported => p(
                StatusCode::CONFLICT,
                "backup_unsupported",
                "This server keeps its data in Redis: back it up from a replica with redis-cli --rdb (docs/redis.md).",
            ),
            Self::OriginPullRefused => p(
                StatusCode::FORBIDDEN,
                "origin_pull_refused",
                "Pulling from the origin needs a CDN's origin-pull secret in X-Usher-Origin-Secret.",
            ),
            Self::StoreUnavailable(_) => {
                let mut pr = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "The service is briefly unavailable.",
                );
                pr.retry_after = Some(2);
                pr
            }
            Self::ApiKeyInUse => p(
                StatusCode::CONFLICT,
                "api_key_in_use",
                "This API key makes the request; delete it with another admin key.",
            ),
            Self::Timeout => {
                let mut pr = p(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "The request took too long.",
                );
                pr.retry_after = Some(2);
                pr
            }
            Self::Internal(_) => p(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side.",
            ),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        self.problem().code
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.problem().status
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let pr = self.problem();
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:usher:problem:{}", pr.code)),
        );
        body.insert("title".into(), json!(pr.title));
        body.insert("status".into(), json!(pr.status.as_u16()));
        body.insert("code".into(), json!(pr.code));
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
    use usher_core::clock::UnixMs;

    #[test]
    fn every_code_is_listed() {
        let at = UnixMs(0);
        let all = [
            Error::InvalidRequest(String::new()),
            Error::PayloadTooLarge,
            Error::UnsupportedMediaType,
            Error::Unauthorized,
            Error::Forbidden("admin"),
            Error::RouteNotFound,
            Error::MethodNotAllowed,
            Error::NotFound("show_unknown"),
            Error::NotFound("ticket_unknown"),
            Error::NotFound("api_key_unknown"),
            Error::NotFound("cdn_unknown"),
            Error::NotFound("media_unknown"),
            Error::UnknownShow(String::new()),
            Error::TokenConflict {
                ticket_id: String::new(),
            },
            Error::ShowHasTickets(1),
            Error::NoTicket,
            Error::TicketUnknown,
            Error::TicketRevoked,
            Error::NotStarted {
                starts_at: at,
                now: at,
            },
            Error::Ended { ended_at: at },
            Error::TicketInUse { retry_after_s: 1 },
            Error::Superseded {
                by_device: String::new(),
                at,
            },
            Error::SteeringSuperseded {
                by_device: String::new(),
                at,
            },
            Error::CdnBuiltIn(""),
            Error::CdnPoolEmpty,
            Error::SessionEnded,
            Error::SessionExpired,
            Error::SessionUnknown,
            Error::GeoBlocked { country: None },
            Error::GeoUnavailable,
            Error::GeoIpRefused(String::new()),
            Error::GrantRefused(""),
            Error::OriginPullRefused,
            Error::StoreUnavailable(String::new()),
            Error::ApiKeyInUse,
            Error::Timeout,
            Error::Internal(String::new()),
            Error::RoleForbidden("observer"),
            Error::CsrfInvalid,
            Error::PasswordChangeRequired,
            Error::LoginFailed,
            Error::LoginThrottled,
            Error::UserExists,
            Error::NotFound("user_unknown"),
            Error::LastAdmin,
            Error::ShowUnpublished,
            Error::NotFound("poster_unknown"),
        ];
        for e in &all {
            assert!(CODES.contains(&e.code()), "{} is not in CODES", e.code());
        }
        for code in CODES {
            assert!(
                all.iter().any(|e| e.code() == *code),
                "{code} is listed but no error has it"
            );
        }
    }
}
