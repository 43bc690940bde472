//! The one error of the services: what failed, in the domain's words, with no HTTP in it. The HTTP
//! adapter (`crate::http::error`) maps every variant to a status and an RFC 9457 problem with one
//! exhaustive `match`; the console renders the same mapping as a page.

use usher_core::clock::UnixMs;
use usher_core::geo::Country;
use usher_core::store::StoreError;

/// Everything a service (and so any request) can fail with. Each variant names what failed in the
/// domain's words; `http::error` gives each one its status and problem document.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::StoreUnavailable(m),
            StoreError::Corrupt(m) => Self::Internal(format!("corrupt store: {m}")),
            // the callers of an operation a backend may lack map this themselves (backup: 409
            // `backup_unsupported`); reaching here is a bug
            e @ StoreError::Unsupported { .. } => Self::Internal(e.to_string()),
        }
    }
}

/// The result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
