//! One error path for the whole HTTP surface: every failure becomes an [`ApiError`], and every
//! `ApiError` becomes an RFC 9457 `application/problem+json` answer with a stable `code`.
//!
//! The map from variant to status and code is one exhaustive `match` without a `_` arm, so a new variant
//! does not compile until it is given a status. 5xx bodies are opaque: the cause rides in a response
//! extension ([`ErrorCause`]) that only the logging middleware reads.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use usher_core::clock::UnixMs;
use usher_core::geo::Country;
use usher_core::store::StoreError;

/// The internal cause of a 5xx, for the log line of the request; never sent to the client.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub String);

/// Everything an HTTP call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, wrong types, unknown fields, invalid values.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// No valid API key.
    #[error("unauthorized")]
    Unauthorized,
    /// The API key lacks the scope.
    #[error("forbidden: needs scope {0}")]
    Forbidden(&'static str),
    /// The console user's role does not allow the call.
    #[error("forbidden for role {0}")]
    RoleForbidden(&'static str),
    /// A console call without the session's CSRF token (or with another one).
    #[error("CSRF token missing or wrong")]
    CsrfInvalid,
    /// The console user must change the password Usher made before anything else.
    #[error("password change required")]
    PasswordChangeRequired,
    /// Console login: wrong name or password.
    #[error("login failed")]
    LoginFailed,
    /// Console login: too many failures for this user or address.
    #[error("too many failed logins")]
    LoginThrottled,
    /// Admin: a console user of that name exists.
    #[error("user exists")]
    UserExists,
    /// Admin: the change would leave no console user with the admin role.
    #[error("last admin")]
    LastAdmin,
    /// Viewer: the show is not published.
    #[error("show unpublished")]
    ShowUnpublished,
    /// No such route.
    #[error("no such route")]
    RouteNotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No such record; the code names what (`show_unknown`, `ticket_unknown`, `api_key_unknown`).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A ticket names a show that does not exist.
    #[error("unknown show {0}")]
    UnknownShow(String),
    /// The token is registered with other terms.
    #[error("token registered with other terms")]
    TokenConflict {
        /// The existing ticket.
        ticket_id: String,
    },
    /// The show still has tickets.
    #[error("show has tickets")]
    ShowHasTickets(u64),
    /// Viewer: no ticket cookie or token.
    #[error("no ticket")]
    NoTicket,
    /// Viewer: the token is not a registered ticket.
    #[error("ticket unknown")]
    TicketUnknown,
    /// Viewer: the ticket was revoked.
    #[error("ticket revoked")]
    TicketRevoked,
    /// Viewer: the window opens later.
    #[error("not started")]
    NotStarted {
        /// When it opens.
        starts_at: UnixMs,
        /// Now, by the server's clock.
        now: UnixMs,
    },
    /// Viewer: the window closed.
    #[error("ended")]
    Ended {
        /// When it closed.
        ended_at: UnixMs,
    },
    /// Viewer: every seat is taken under `oldest_wins`.
    #[error("ticket in use")]
    TicketInUse {
        /// Seconds until a lease may lapse.
        retry_after_s: u64,
    },
    /// Viewer: the session lost its seat to another device.
    #[error("superseded")]
    Superseded {
        /// The other device's label.
        by_device: String,
        /// When.
        at: UnixMs,
    },
    /// Steering: the session lost its seat; 410 so a player stops reloading the steering manifest.
    #[error("superseded (steering)")]
    SteeringSuperseded {
        /// The other device's label.
        by_device: String,
        /// When.
        at: UnixMs,
    },
    /// Admin: the change is not possible for Usher's built-in origin (`origin`).
    #[error("built-in CDN: {0}")]
    CdnBuiltIn(&'static str),
    /// Admin: the change would leave no enabled CDN in the pool.
    #[error("no enabled CDN would remain")]
    CdnPoolEmpty,
    /// Viewer: the session was ended by its player or an admin.
    #[error("session ended")]
    SessionEnded,
    /// Viewer: the lease lapsed; admit again.
    #[error("session expired")]
    SessionExpired,
    /// Viewer: no such session.
    #[error("session unknown")]
    SessionUnknown,
    /// Viewer: the show's Geo policy refuses where the request comes from.
    #[error("geo blocked")]
    GeoBlocked {
        /// The country detected, when the database knows it.
        country: Option<Country>,
    },
    /// Viewer: the show has Geo rules and no GeoIP database is loaded yet; retry later.
    #[error("no GeoIP database loaded")]
    GeoUnavailable,
    /// Admin: a GeoIP database was refused (the one serving stays).
    #[error("GeoIP database refused: {0}")]
    GeoIpRefused(String),
    /// Media: the grant is missing, malformed, tampered, expired, for another path, or its session
    /// no longer plays.
    #[error("grant refused: {0}")]
    GrantRefused(&'static str),
    /// Backups through the API exist for the embedded store only.
    #[error("backup unsupported")]
    BackupUnsupported,
    /// Origin pull: no CDN of the pool holds the secret the request carries.
    #[error("origin pull refused")]
    OriginPullRefused,
    /// The store cannot be reached; retry later.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// Admin: an API key cannot delete itself (it may be the last admin key).
    #[error("an API key cannot delete itself")]
    ApiKeyInUse,
    /// The request took longer than `http.request_timeout_s`.
    #[error("request timed out")]
    Timeout,
    /// A bug or corrupt data; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::StoreUnavailable(m),
            StoreError::Corrupt(m) => Self::Internal(format!("corrupt store: {m}")),
        }
    }
}

struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: Option<String>,
    extra: Map<String, Value>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn problem(&self) -> Problem {
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

impl IntoResponse for ApiError {
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

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed() {
        let at = UnixMs(0);
        let all = [
            ApiError::InvalidRequest(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::Unauthorized,
            ApiError::Forbidden("admin"),
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::NotFound("show_unknown"),
            ApiError::NotFound("ticket_unknown"),
            ApiError::NotFound("api_key_unknown"),
            ApiError::NotFound("cdn_unknown"),
            ApiError::NotFound("media_unknown"),
            ApiError::UnknownShow(String::new()),
            ApiError::TokenConflict {
                ticket_id: String::new(),
            },
            ApiError::ShowHasTickets(1),
            ApiError::NoTicket,
            ApiError::TicketUnknown,
            ApiError::TicketRevoked,
            ApiError::NotStarted {
                starts_at: at,
                now: at,
            },
            ApiError::Ended { ended_at: at },
            ApiError::TicketInUse { retry_after_s: 1 },
            ApiError::Superseded {
                by_device: String::new(),
                at,
            },
            ApiError::SteeringSuperseded {
                by_device: String::new(),
                at,
            },
            ApiError::CdnBuiltIn(""),
            ApiError::CdnPoolEmpty,
            ApiError::SessionEnded,
            ApiError::SessionExpired,
            ApiError::SessionUnknown,
            ApiError::GeoBlocked { country: None },
            ApiError::GeoUnavailable,
            ApiError::GeoIpRefused(String::new()),
            ApiError::GrantRefused(""),
            ApiError::OriginPullRefused,
            ApiError::StoreUnavailable(String::new()),
            ApiError::ApiKeyInUse,
            ApiError::Timeout,
            ApiError::Internal(String::new()),
            ApiError::RoleForbidden("observer"),
            ApiError::CsrfInvalid,
            ApiError::PasswordChangeRequired,
            ApiError::LoginFailed,
            ApiError::LoginThrottled,
            ApiError::UserExists,
            ApiError::NotFound("user_unknown"),
            ApiError::LastAdmin,
            ApiError::ShowUnpublished,
            ApiError::NotFound("poster_unknown"),
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
