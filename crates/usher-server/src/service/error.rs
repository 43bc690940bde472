//! The one error of the services: what failed, in the domain's words, with no HTTP in it. The HTTP
//! adapter (`crate::http::error`) maps every variant to a status and an RFC 9457 problem with one
//! exhaustive `match`; the console renders the same mapping as a page.

use serde::Serialize;
use usher_core::clock::UnixMs;
use usher_core::geo::Country;
use usher_core::store::StoreError;
use utoipa::ToSchema;

/// Declares [`Code`] from one list: the variants, their text (what serde writes and the API document
/// lists) and [`Code::ALL`], so the three cannot differ.
macro_rules! codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $text:literal,)+) => {
        /// The stable reason of an error answer (`code` in every problem), one variant per code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        pub enum Code {
            $($(#[doc = $doc])+ #[serde(rename = $text)] $variant,)+
        }

        impl Code {
            /// Every code, in the order of its declaration.
            pub const ALL: &[Code] = &[$(Code::$variant),+];
            /// Every code's text, in the same order.
            pub const NAMES: &[&str] = &[$($text),+];

            /// The code's text (`show_unknown`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)+
                }
            }
        }
    };
}

codes! {
    /// The request is malformed.
    InvalidRequest = "invalid_request",
    /// The body is too large.
    PayloadTooLarge = "payload_too_large",
    /// The body is not JSON.
    UnsupportedMediaType = "unsupported_media_type",
    /// No valid API key.
    Unauthorized = "unauthorized",
    /// The key's scope or the user's role falls short.
    Forbidden = "forbidden",
    /// No such route.
    RouteNotFound = "not_found",
    /// The route does not take this method.
    MethodNotAllowed = "method_not_allowed",
    /// No such show (or a ticket names a show that does not exist).
    ShowUnknown = "show_unknown",
    /// No such ticket.
    TicketUnknown = "ticket_unknown",
    /// No such API key.
    ApiKeyUnknown = "api_key_unknown",
    /// No such CDN.
    CdnUnknown = "cdn_unknown",
    /// No such media file.
    MediaUnknown = "media_unknown",
    /// The token is registered with other terms.
    TokenConflict = "token_conflict",
    /// Tickets still admit to the show.
    ShowHasTickets = "show_has_tickets",
    /// The show's stream folder lies inside another show's, or holds one.
    StreamPathNested = "stream_path_nested",
    /// The API key would delete itself.
    ApiKeyInUse = "api_key_in_use",
    /// No ticket cookie or token.
    NoTicket = "no_ticket",
    /// The ticket was revoked.
    TicketRevoked = "ticket_revoked",
    /// The window opens later.
    NotStarted = "not_started",
    /// The window closed.
    Ended = "ended",
    /// Every seat is taken under `oldest_wins`.
    TicketInUse = "ticket_in_use",
    /// Playback moved to another device.
    Superseded = "superseded",
    /// Usher's own origin cannot be replaced or deleted.
    CdnBuiltin = "cdn_builtin",
    /// No enabled CDN would remain.
    CdnPoolEmpty = "cdn_pool_empty",
    /// A CDN's signing key cannot be used (not of its scheme's form, an unreadable PEM).
    SigningKeyInvalid = "signing_key_invalid",
    /// A CDN's signing option holds a value its scheme cannot carry (`field` names it).
    SigningOptionInvalid = "signing_option_invalid",
    /// A CDN's nginx `secure_link_md5` expression would hash what nginx can never compute.
    SigningUnmatchable = "signing_unmatchable",
    /// The session was ended.
    SessionEnded = "session_ended",
    /// The session's lease lapsed.
    SessionExpired = "session_expired",
    /// No such session.
    SessionUnknown = "session_unknown",
    /// The session's credentials were copied: another player holds the current secret.
    SessionCloned = "session_cloned",
    /// The call controls a session and carried no session secret.
    SessionSecretRequired = "session_secret_required",
    /// The session secret presented was never this session's.
    SessionSecretInvalid = "session_secret_invalid",
    /// The show's Geo policy refuses the viewer's place.
    GeoBlocked = "geo_blocked",
    /// No GeoIP database is loaded yet.
    GeoUnavailable = "geo_unavailable",
    /// A GeoIP database was refused.
    GeoipRefused = "geoip_refused",
    /// The media grant is not valid.
    GrantRefused = "grant_refused",
    /// No enabled CDN holds the origin-pull secret sent.
    OriginPullRefused = "origin_pull_refused",
    /// The store cannot be reached.
    StoreUnavailable = "store_unavailable",
    /// The request took too long.
    Timeout = "timeout",
    /// A bug on our side.
    Internal = "internal",
    /// The console session's CSRF token is missing or wrong.
    CsrfInvalid = "csrf_invalid",
    /// The console user must change the password first.
    PasswordChangeRequired = "password_change_required",
    /// Wrong user name or password.
    LoginFailed = "login_failed",
    /// Too many failed logins, or too many requests of one kind at once; retry after `Retry-After`.
    RateLimited = "rate_limited",
    /// A console user of that name exists.
    UserExists = "user_exists",
    /// No such console user.
    UserUnknown = "user_unknown",
    /// The last admin keeps the admin role.
    LastAdmin = "last_admin",
    /// The show is not published.
    ShowUnpublished = "show_unpublished",
    /// The show has no poster.
    PosterUnknown = "poster_unknown",
    /// Backups through the API exist for the embedded store only.
    BackupUnsupported = "backup_unsupported",
    /// No such content key (or none for the session's stream).
    KeyUnknown = "key_unknown",
    /// A content key of that id is registered with another key or stream.
    KeyConflict = "key_conflict",
    /// This `Idempotency-Key` was used for another request.
    IdempotencyKeyReused = "idempotency_key_reused",
    /// The first request with this `Idempotency-Key` is still running.
    IdempotencyInProgress = "idempotency_in_progress",
    /// No such webhook endpoint.
    WebhookUnknown = "webhook_unknown",
    /// No such delivery of that endpoint.
    DeliveryUnknown = "delivery_unknown",
    /// No such upload (or it expired).
    UploadUnknown = "upload_unknown",
    /// Uploads are not enabled on this node (`uploads.enabled`).
    UploadsDisabled = "uploads_disabled",
    /// A `PATCH` did not start at the upload's offset.
    UploadOffsetMismatch = "upload_offset_mismatch",
    /// Another request is writing the upload, or its packaging job is running.
    UploadBusy = "upload_busy",
    /// The request names a tus protocol version other than 1.0.0.
    TusVersionUnsupported = "tus_version_unsupported",
    /// TV sign-in: the code is not approved yet; poll again after `interval` seconds (RFC 8628).
    AuthorizationPending = "authorization_pending",
    /// TV sign-in: polled too early; the interval grew by 5 seconds (RFC 8628).
    SlowDown = "slow_down",
    /// TV sign-in: the device code lapsed, was taken, or never was; start again (RFC 8628).
    ExpiredToken = "expired_token",
    /// TV sign-in: no such code waiting for approval (lapsed, approved already, or mistyped).
    TvCodeUnknown = "tv_code_unknown",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind of record that may be missing (each has its own `…_unknown` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// A show.
    Show,
    /// A ticket (found by id, not by token: see [`Error::TicketUnknown`]).
    Ticket,
    /// An API key.
    ApiKey,
    /// A CDN of the pool.
    Cdn,
    /// A media file.
    Media,
    /// A console user.
    User,
    /// A show's poster image.
    Poster,
    /// A content key.
    ContentKey,
    /// A webhook endpoint.
    Webhook,
    /// A webhook delivery.
    Delivery,
    /// An upload.
    Upload,
}

impl Record {
    /// The code of its absence.
    pub const fn code(self) -> Code {
        match self {
            Self::Show => Code::ShowUnknown,
            Self::Ticket => Code::TicketUnknown,
            Self::ApiKey => Code::ApiKeyUnknown,
            Self::Cdn => Code::CdnUnknown,
            Self::Media => Code::MediaUnknown,
            Self::User => Code::UserUnknown,
            Self::Poster => Code::PosterUnknown,
            Self::ContentKey => Code::KeyUnknown,
            Self::Webhook => Code::WebhookUnknown,
            Self::Delivery => Code::DeliveryUnknown,
            Self::Upload => Code::UploadUnknown,
        }
    }
}

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
    /// Console login or password change: too many attempts for this user or client network; the next
    /// is allowed after the wait.
    #[error("too many failed logins")]
    LoginThrottled {
        /// Seconds until the next attempt is allowed.
        retry_after_s: u64,
    },
    /// A rate limit (`[rate_limits]`) refused the attempt; retry after `retry_after_s`.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until the next attempt is allowed.
        retry_after_s: u64,
    },
    /// Too many requests of one costly kind (password checks, audit scans) are waiting already.
    #[error("busy")]
    Busy {
        /// Seconds after which a retry is likely to find room.
        retry_after_s: u64,
    },
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
    /// No such record; its code names what (`show_unknown`, `ticket_unknown`, `api_key_unknown`).
    #[error("{} not found", .0.code())]
    NotFound(Record),
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
    /// Admin: the show's stream folder lies inside another show's folder or holds it (`demo` and
    /// `demo/180p`), so one show's grants would open the other's media.
    #[error("stream folder nested with show {other_show}'s")]
    StreamPathNested {
        /// The other show.
        other_show: String,
        /// Its stream folder.
        other_path: String,
        /// Whether this show's folder lies inside the other's (else it holds it).
        inside: bool,
    },
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
    /// Admin: a CDN's signing configuration is well-formed but its scheme cannot use it; `code` is one of
    /// `signing_key_invalid`, `signing_option_invalid`, `signing_unmatchable`.
    #[error("signing refused: {detail}")]
    SigningRefused {
        /// Why, as a code.
        code: Code,
        /// The option at fault, when one is.
        field: Option<&'static str>,
        /// What is wrong, never a key's value.
        detail: String,
    },
    /// Viewer: the session was ended by its player or an admin.
    #[error("session ended")]
    SessionEnded,
    /// Viewer: the lease lapsed; admit again.
    #[error("session expired")]
    SessionExpired,
    /// Viewer: no such session.
    #[error("session unknown")]
    SessionUnknown,
    /// Viewer: a superseded session secret was presented (a copy of another player's credentials); the
    /// player holding the current secret plays on.
    #[error("session cloned")]
    SessionCloned,
    /// Viewer: a call that controls a session without its secret.
    #[error("session secret required")]
    SessionSecretRequired,
    /// Viewer: a session secret that was never the session's.
    #[error("session secret invalid")]
    SessionSecretInvalid,
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
    /// Keys: the key endpoint refuses this request, for the reason `0` (the session's refusal:
    /// `superseded`, `session_cloned`, `ticket_revoked`, `geo_blocked`, a missing or wrong secret or
    /// grant…). Every such refusal is a 403, so a player treats them alike and its page learns the
    /// story from its next heartbeat.
    #[error("key refused: {0}")]
    KeyRefused(Code),
    /// Admin: a content key of this id is registered with another key or stream folder.
    #[error("content key registered with another key or stream")]
    KeyConflict,
    /// Origin pull: no enabled CDN of the pool holds the secret the request carries.
    #[error("origin pull refused")]
    OriginPullRefused,
    /// Safe retries: the `Idempotency-Key` was first used for a request with another method, target or
    /// body.
    #[error("idempotency key reused for another request")]
    IdempotencyKeyReused,
    /// Safe retries: the first request with this `Idempotency-Key` has not answered yet.
    #[error("idempotency key in use by a running request")]
    IdempotencyInProgress,
    /// The store cannot be reached; retry later.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    /// Admin: an API key cannot delete itself (it may be the last admin key).
    #[error("an API key cannot delete itself")]
    ApiKeyInUse,
    /// The request took longer than `http.request_timeout_s`.
    #[error("request timed out")]
    Timeout,
    /// Uploads: `uploads.enabled` is off on this node.
    #[error("uploads disabled")]
    UploadsDisabled,
    /// Uploads: a `PATCH` whose `Upload-Offset` is not the upload's offset (`expected`).
    #[error("upload offset mismatch")]
    UploadOffsetMismatch {
        /// The offset the upload is at.
        expected: u64,
    },
    /// Uploads: another request writes the upload, or its packaging job runs.
    #[error("upload busy: {0}")]
    UploadBusy(&'static str),
    /// Uploads: the request's `Tus-Resumable` names a version other than 1.0.0.
    #[error("tus version unsupported")]
    TusVersionUnsupported,
    /// Uploads: the body's or the file's type is not one an upload takes (the detail says which).
    #[error("unsupported upload type: {0}")]
    UploadType(String),
    /// TV sign-in: the code is not approved yet.
    #[error("authorization pending")]
    AuthorizationPending {
        /// Seconds until the next poll.
        interval_s: u32,
    },
    /// TV sign-in: polled before the interval passed.
    #[error("slow down")]
    SlowDown {
        /// The grown interval.
        interval_s: u32,
    },
    /// TV sign-in: the device code is not one waiting (lapsed, taken, or never made).
    #[error("expired token")]
    ExpiredToken,
    /// TV sign-in: the user code typed on the phone is not one waiting for approval.
    #[error("TV code unknown")]
    TvCodeUnknown,
    /// A bug or corrupt data; the detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable code of this error. Several variants may share one (`forbidden` for a key's scope and
    /// a user's role); `http::error` maps each variant to its status.
    pub const fn code(&self) -> Code {
        match self {
            Self::InvalidRequest(_) => Code::InvalidRequest,
            Self::PayloadTooLarge => Code::PayloadTooLarge,
            Self::UnsupportedMediaType => Code::UnsupportedMediaType,
            Self::Unauthorized => Code::Unauthorized,
            Self::Forbidden(_) | Self::RoleForbidden(_) => Code::Forbidden,
            Self::CsrfInvalid => Code::CsrfInvalid,
            Self::PasswordChangeRequired => Code::PasswordChangeRequired,
            Self::LoginFailed => Code::LoginFailed,
            Self::LoginThrottled { .. } | Self::RateLimited { .. } | Self::Busy { .. } => {
                Code::RateLimited
            }
            Self::UserExists => Code::UserExists,
            Self::LastAdmin => Code::LastAdmin,
            Self::ShowUnpublished => Code::ShowUnpublished,
            Self::RouteNotFound => Code::RouteNotFound,
            Self::MethodNotAllowed => Code::MethodNotAllowed,
            Self::NotFound(record) => record.code(),
            Self::UnknownShow(_) => Code::ShowUnknown,
            Self::TokenConflict { .. } => Code::TokenConflict,
            Self::ShowHasTickets(_) => Code::ShowHasTickets,
            Self::StreamPathNested { .. } => Code::StreamPathNested,
            Self::NoTicket => Code::NoTicket,
            Self::TicketUnknown => Code::TicketUnknown,
            Self::TicketRevoked => Code::TicketRevoked,
            Self::NotStarted { .. } => Code::NotStarted,
            Self::Ended { .. } => Code::Ended,
            Self::TicketInUse { .. } => Code::TicketInUse,
            Self::Superseded { .. } | Self::SteeringSuperseded { .. } => Code::Superseded,
            Self::CdnBuiltIn(_) => Code::CdnBuiltin,
            Self::CdnPoolEmpty => Code::CdnPoolEmpty,
            Self::SigningRefused { code, .. } => *code,
            Self::SessionEnded => Code::SessionEnded,
            Self::SessionExpired => Code::SessionExpired,
            Self::SessionUnknown => Code::SessionUnknown,
            Self::SessionCloned => Code::SessionCloned,
            Self::SessionSecretRequired => Code::SessionSecretRequired,
            Self::SessionSecretInvalid => Code::SessionSecretInvalid,
            Self::GeoBlocked { .. } => Code::GeoBlocked,
            Self::GeoUnavailable => Code::GeoUnavailable,
            Self::GeoIpRefused(_) => Code::GeoipRefused,
            Self::GrantRefused(_) => Code::GrantRefused,
            Self::BackupUnsupported => Code::BackupUnsupported,
            Self::KeyRefused(code) => *code,
            Self::KeyConflict => Code::KeyConflict,
            Self::IdempotencyKeyReused => Code::IdempotencyKeyReused,
            Self::IdempotencyInProgress => Code::IdempotencyInProgress,
            Self::OriginPullRefused => Code::OriginPullRefused,
            Self::StoreUnavailable(_) => Code::StoreUnavailable,
            Self::ApiKeyInUse => Code::ApiKeyInUse,
            Self::Timeout => Code::Timeout,
            Self::Internal(_) => Code::Internal,
            Self::UploadsDisabled => Code::UploadsDisabled,
            Self::UploadOffsetMismatch { .. } => Code::UploadOffsetMismatch,
            Self::UploadBusy(_) => Code::UploadBusy,
            Self::TusVersionUnsupported => Code::TusVersionUnsupported,
            Self::UploadType(_) => Code::UnsupportedMediaType,
            Self::AuthorizationPending { .. } => Code::AuthorizationPending,
            Self::SlowDown { .. } => Code::SlowDown,
            Self::ExpiredToken => Code::ExpiredToken,
            Self::TvCodeUnknown => Code::TvCodeUnknown,
        }
    }

    /// One error of each code, for documents and tests that go through every code; the `match` has no
    /// `_` arm, so a new code does not compile until it has an example.
    pub fn example(code: Code) -> Self {
        let at = UnixMs(0);
        match code {
            Code::InvalidRequest => Self::InvalidRequest(String::new()),
            Code::PayloadTooLarge => Self::PayloadTooLarge,
            Code::UnsupportedMediaType => Self::UnsupportedMediaType,
            Code::Unauthorized => Self::Unauthorized,
            Code::Forbidden => Self::Forbidden("admin"),
            Code::RouteNotFound => Self::RouteNotFound,
            Code::MethodNotAllowed => Self::MethodNotAllowed,
            Code::ShowUnknown => Self::NotFound(Record::Show),
            Code::TicketUnknown => Self::NotFound(Record::Ticket),
            Code::ApiKeyUnknown => Self::NotFound(Record::ApiKey),
            Code::CdnUnknown => Self::NotFound(Record::Cdn),
            Code::MediaUnknown => Self::NotFound(Record::Media),
            Code::TokenConflict => Self::TokenConflict {
                ticket_id: String::new(),
            },
            Code::ShowHasTickets => Self::ShowHasTickets(1),
            Code::StreamPathNested => Self::StreamPathNested {
                other_show: String::new(),
                other_path: String::new(),
                inside: true,
            },
            Code::ApiKeyInUse => Self::ApiKeyInUse,
            Code::NoTicket => Self::NoTicket,
            Code::TicketRevoked => Self::TicketRevoked,
            Code::NotStarted => Self::NotStarted {
                starts_at: at,
                now: at,
            },
            Code::Ended => Self::Ended { ended_at: at },
            Code::TicketInUse => Self::TicketInUse { retry_after_s: 1 },
            Code::Superseded => Self::Superseded {
                by_device: String::new(),
                at,
            },
            Code::CdnBuiltin => Self::CdnBuiltIn(""),
            Code::CdnPoolEmpty => Self::CdnPoolEmpty,
            code @ (Code::SigningKeyInvalid
            | Code::SigningOptionInvalid
            | Code::SigningUnmatchable) => Self::SigningRefused {
                code,
                field: None,
                detail: String::new(),
            },
            Code::SessionEnded => Self::SessionEnded,
            Code::SessionExpired => Self::SessionExpired,
            Code::SessionUnknown => Self::SessionUnknown,
            Code::SessionCloned => Self::SessionCloned,
            Code::SessionSecretRequired => Self::SessionSecretRequired,
            Code::SessionSecretInvalid => Self::SessionSecretInvalid,
            Code::GeoBlocked => Self::GeoBlocked { country: None },
            Code::GeoUnavailable => Self::GeoUnavailable,
            Code::GeoipRefused => Self::GeoIpRefused(String::new()),
            Code::GrantRefused => Self::GrantRefused(""),
            Code::OriginPullRefused => Self::OriginPullRefused,
            Code::StoreUnavailable => Self::StoreUnavailable(String::new()),
            Code::Timeout => Self::Timeout,
            Code::Internal => Self::Internal(String::new()),
            Code::CsrfInvalid => Self::CsrfInvalid,
            Code::PasswordChangeRequired => Self::PasswordChangeRequired,
            Code::LoginFailed => Self::LoginFailed,
            Code::RateLimited => Self::LoginThrottled { retry_after_s: 1 },
            Code::UserExists => Self::UserExists,
            Code::UserUnknown => Self::NotFound(Record::User),
            Code::LastAdmin => Self::LastAdmin,
            Code::ShowUnpublished => Self::ShowUnpublished,
            Code::PosterUnknown => Self::NotFound(Record::Poster),
            Code::BackupUnsupported => Self::BackupUnsupported,
            Code::KeyUnknown => Self::NotFound(Record::ContentKey),
            Code::KeyConflict => Self::KeyConflict,
            Code::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            Code::IdempotencyInProgress => Self::IdempotencyInProgress,
            Code::WebhookUnknown => Self::NotFound(Record::Webhook),
            Code::DeliveryUnknown => Self::NotFound(Record::Delivery),
            Code::UploadUnknown => Self::NotFound(Record::Upload),
            Code::UploadsDisabled => Self::UploadsDisabled,
            Code::UploadOffsetMismatch => Self::UploadOffsetMismatch { expected: 0 },
            Code::UploadBusy => Self::UploadBusy(""),
            Code::TusVersionUnsupported => Self::TusVersionUnsupported,
            Code::AuthorizationPending => Self::AuthorizationPending { interval_s: 5 },
            Code::SlowDown => Self::SlowDown { interval_s: 10 },
            Code::ExpiredToken => Self::ExpiredToken,
            Code::TvCodeUnknown => Self::TvCodeUnknown,
        }
    }
}

impl From<crate::limits::Limited> for Error {
    fn from(l: crate::limits::Limited) -> Self {
        Self::RateLimited {
            retry_after_s: l.retry_after_s(),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => Self::StoreUnavailable(m),
            StoreError::Corrupt(m) => Self::Internal(format!("corrupt store: {m}")),
            StoreError::Incompatible(m) => Self::Internal(format!("incompatible store: {m}")),
            // the callers of an operation a backend may lack map this themselves (backup: 409
            // `backup_unsupported`); reaching here is a bug
            e @ StoreError::Unsupported { .. } => Self::Internal(e.to_string()),
        }
    }
}

/// The result of a service call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_text_and_each_has_an_example() {
        assert_eq!(Code::ALL.len(), Code::NAMES.len());
        for (code, name) in Code::ALL.iter().zip(Code::NAMES) {
            assert_eq!(code.as_str(), *name);
            assert_eq!(serde_json::to_value(code).unwrap(), *name);
            assert_eq!(Error::example(*code).code(), *code, "{name}");
        }
    }
}
