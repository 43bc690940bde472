//! Who is calling and what they may do: API keys (`Authorization: Bearer`) and console users (a session
//! cookie plus a CSRF token), one [`Caller`] for both, so the JSON API and the console share every action.
//!
//! - Passwords are argon2id PHC strings, hashed and checked off the async runtime.
//! - A console session is a random secret in an HttpOnly, `SameSite=Strict` cookie (`Secure` when the
//!   public URL is https); the store keeps only its keyed hash, with an idle timeout
//!   ([`IDLE_TIMEOUT_MS`]) and an absolute lifetime ([`MAX_SESSION_MS`]).
//! - CSRF: the synchronizer token is an HMAC of the session's secret under the server key
//!   ([`usher_core::secret::SecretHasher::csrf_token`]), sent by forms as `_csrf` and by scripts as
//!   `X-CSRF-Token`, and compared in constant time. API keys need none (no ambient credential).
//! - Failed logins count per user and per address in the store; past [`MAX_USER_FAILURES`] (or
//!   [`MAX_ADDRESS_FAILURES`]) within [`FAILURE_WINDOW_MS`] logins are refused until the window passes.
//! - A user whose password Usher made (the first-run `admin`, `add-user` without a password) must change
//!   it before anything else.

use std::marker::PhantomData;
use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use usher_core::admin::{Actor, AdminUser, ConsoleSession, Permission, Role, UserName};
use usher_core::clock::UnixMs;
use usher_core::ids::random_b64;
use usher_core::secret::{ApiKeySecret, SecretHash};
use usher_core::store::{ApiKey, Store, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::extract::ClientIp;
use crate::state::AppState;

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "usher_console";
/// Name of the cookie holding the login form's CSRF token (double submit, before a session exists).
pub const LOGIN_CSRF_COOKIE: &str = "usher_login_csrf";
/// Header by which scripts send the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A console session ends after this long without a request.
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A console session ends this long after login, whatever its activity.
pub const MAX_SESSION_MS: i64 = 12 * 3600 * 1000;
/// Failed logins of one user within the window before its logins are refused.
pub const MAX_USER_FAILURES: u32 = 5;
/// Failed logins from one address within the window before its logins are refused.
pub const MAX_ADDRESS_FAILURES: u32 = 20;
/// The window failed logins are counted in, from the first of them.
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// How often (at most) a session's idle timer is pushed back in the store.
const TOUCH_EVERY_MS: i64 = 15_000;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An API key.
    Key(ApiKey),
    /// A console user, logged in with a session.
    User(AdminUser),
}

/// An authenticated caller and where the request came from.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// The client address.
    pub address: IpAddr,
    /// The console session's CSRF token (for pages to embed), `None` for API keys.
    pub csrf: Option<String>,
    /// The console session's hash, `None` for API keys.
    pub session: Option<SecretHash>,
}

impl Caller {
    /// Whether the caller may do `perm`.
    pub fn allows(&self, perm: Permission) -> bool {
        match &self.principal {
            Principal::Key(k) => k.scopes.iter().any(|s| {
                *s == usher_core::store::Scope::Admin
                    || (*s == usher_core::store::Scope::Tickets && perm.scope_name() == "tickets")
            }),
            Principal::User(u) => u.role.allows(perm),
        }
    }

    /// Refuses unless the caller may do `perm`.
    ///
    /// # Errors
    /// `forbidden`, naming the scope (API keys) or the role (users) that falls short.
    pub fn require(&self, perm: Permission) -> ApiResult<()> {
        if self.allows(perm) {
            return Ok(());
        }
        Err(match &self.principal {
            Principal::Key(_) => ApiError::Forbidden(perm.scope_name()),
            Principal::User(u) => ApiError::RoleForbidden(u.role.as_str()),
        })
    }

    /// The caller as the audit log names it.
    pub fn actor(&self) -> Actor {
        match &self.principal {
            Principal::Key(k) => Actor::ApiKey(k.id.to_string()),
            Principal::User(u) => Actor::User(u.name.to_string()),
        }
    }

    /// The console user, `None` for an API key.
    pub fn user(&self) -> Option<&AdminUser> {
        match &self.principal {
            Principal::User(u) => Some(u),
            Principal::Key(_) => None,
        }
    }
}

/// Hashes a password with argon2id and a fresh salt, off the async runtime.
///
/// # Errors
/// `internal` if hashing fails (it does not for valid parameters).
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
    .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))
}

fn rand_bytes(buf: &mut [u8]) {
    use base64::Engine as _;
    // random_b64 draws from the OS generator; decode it back into bytes
    let text = random_b64(buf.len());
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_default();
    buf.copy_from_slice(&bytes[..buf.len()]);
}

/// Checks a password against a PHC string, off the async runtime.
pub async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Checks a new password's length.
///
/// # Errors
/// `invalid_request` naming the rule.
pub fn check_password(password: &str) -> ApiResult<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=256).contains(&n) || password.chars().any(char::is_control) {
        return Err(ApiError::InvalidRequest(format!(
            "password: must be {MIN_PASSWORD_CHARS} to 256 characters, without control characters"
        )));
    }
    Ok(())
}

/// A password Usher makes: 144 random bits, 24 URL-safe characters.
pub fn generate_password() -> String {
    random_b64(18)
}

/// Makes a console user record with a hashed password.
///
/// # Errors
/// When hashing fails.
pub async fn new_user(
    store: &dyn Store,
    name: UserName,
    role: Role,
    password: String,
    must_change_password: bool,
) -> ApiResult<AdminUser> {
    let now = store.now();
    Ok(AdminUser {
        name,
        role,
        password_hash: hash_password(password).await?,
        must_change_password,
        created_at: now,
        updated_at: now,
    })
}

/// First run: when the store has no console user, adds `admin` (role admin) with a random password that
/// must be changed at its first login, and returns that password (to be shown once). `None` when a user
/// exists (or another node made `admin` at the same moment).
///
/// # Errors
/// The store's error.
pub async fn bootstrap_admin(store: &dyn Store) -> anyhow::Result<Option<String>> {
    if !store.admin_users().await?.is_empty() {
        return Ok(None);
    }
    let password = generate_password();
    let user = new_user(
        store,
        UserName::parse("admin").expect("valid name"),
        Role::Admin,
        password.clone(),
        true,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if store.create_admin_user(user).await? {
        store
            .append_audit(usher_core::admin::AuditEntry {
                at: store.now(),
                actor: Actor::System("bootstrap".into()),
                action: "user.create".into(),
                target: "user:admin".into(),
                address: None,
                detail: "role=admin, first run".into(),
            })
            .await?;
        Ok(Some(password))
    } else {
        Ok(None)
    }
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginRefused {
    /// Wrong name or password.
    Wrong,
    /// Too many failures for this user or address; retry after the window.
    Throttled,
    /// The store failed.
    Store(StoreError),
    /// Something else failed.
    Internal(ApiError),
}

impl From<StoreError> for LoginRefused {
    fn from(e: StoreError) -> Self {
        LoginRefused::Store(e)
    }
}

/// A new console session: the cookie's secret (to set) and the user.
pub struct LoggedIn {
    /// The cookie's secret.
    pub secret: String,
    /// The user.
    pub user: AdminUser,
}

/// Checks a name and password, counting failures per user and per address.
///
/// # Errors
/// [`LoginRefused`].
pub async fn login(
    state: &AppState,
    name: &str,
    password: &str,
    address: IpAddr,
) -> Result<LoggedIn, LoginRefused> {
    let store = &*state.store;
    let addr_key = format!("addr:{address}");
    let name = UserName::parse(name.trim()).ok();
    let user_key = name.as_ref().map(|n| format!("user:{n}"));
    if store.login_failures(&addr_key).await? >= MAX_ADDRESS_FAILURES {
        return Err(LoginRefused::Throttled);
    }
    if let Some(k) = &user_key
        && store.login_failures(k).await? >= MAX_USER_FAILURES
    {
        return Err(LoginRefused::Throttled);
    }
    let user = match &name {
        Some(n) => store.admin_user(n).await?,
        None => None,
    };
    let ok = match &user {
        Some(u) => verify_password(password.to_owned(), u.password_hash.clone()).await,
        None => {
            // an unknown name costs one argon2 run too, so timing does not tell names apart
            let _ = hash_password(password.to_owned()).await;
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        store
            .note_login_failure(&addr_key, FAILURE_WINDOW_MS)
            .await?;
        if let Some(k) = &user_key {
            store.note_login_failure(k, FAILURE_WINDOW_MS).await?;
        }
        let known = name.is_some() && user_key.is_some();
        crate::audit::record_system(
            state,
            if known {
                Actor::User(name.map(|n| n.to_string()).unwrap_or_default())
            } else {
                Actor::System("login".into())
            },
            "login.failed",
            "",
            Some(address),
            "",
        )
        .await;
        return Err(LoginRefused::Wrong);
    };
    if let Some(k) = &user_key {
        store.clear_login_failures(k).await?;
    }
    let secret = random_b64(32);
    let now = store.now();
    store
        .put_console_session(ConsoleSession {
            id: state.hasher.console_session(&secret),
            user: user.name.clone(),
            created_at: now,
            last_seen: now,
            expires_at: UnixMs(now.0 + IDLE_TIMEOUT_MS),
        })
        .await?;
    crate::audit::record_system(
        state,
        Actor::User(user.name.to_string()),
        "login",
        &format!("user:{}", user.name),
        Some(address),
        "",
    )
    .await;
    Ok(LoggedIn { secret, user })
}

/// The session cookie for `secret` (an empty secret and zero age clears it).
pub fn session_cookie(state: &AppState, secret: String, clear: bool) -> Cookie<'static> {
    let mut c = Cookie::build((SESSION_COOKIE, secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .build();
    if clear {
        c.make_removal();
    }
    c
}

/// What a request carries to authenticate with.
enum Presented {
    Bearer(String),
    Session(String),
    Nothing,
}

fn presented(parts: &Parts) -> Presented {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        return Presented::Bearer(
            v.to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, key)| key.trim().to_owned())
                .unwrap_or_default(),
        );
    }
    match CookieJar::from_headers(&parts.headers).get(SESSION_COOKIE) {
        Some(c) if !c.value().is_empty() => Presented::Session(c.value().to_owned()),
        _ => Presented::Nothing,
    }
}

async fn api_key(state: &AppState, bearer: &str) -> ApiResult<ApiKey> {
    let presented = ApiKeySecret::parse(bearer).ok_or(ApiError::Unauthorized)?;
    let key = state
        .store
        .api_key(&presented.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !key
        .secret_hash
        .ct_eq(&state.hasher.api_key_secret(&presented.secret))
    {
        return Err(ApiError::Unauthorized);
    }
    state.store.touch_api_key(&key.id).await?;
    Ok(key)
}

/// The console session of `secret` and its user, its idle timer pushed back.
///
/// # Errors
/// `unauthorized` when the session is unknown, lapsed or past its lifetime, or its user is gone.
pub async fn console_user(state: &AppState, secret: &str) -> ApiResult<(AdminUser, SecretHash)> {
    let id = state.hasher.console_session(secret);
    let session = state
        .store
        .console_session(&id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = state.store.now();
    if now.0 - session.created_at.0 > MAX_SESSION_MS {
        state.store.delete_console_session(&id).await?;
        return Err(ApiError::Unauthorized);
    }
    let user = state
        .store
        .admin_user(&session.user)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if now.0 - session.last_seen.0 >= TOUCH_EVERY_MS {
        state
            .store
            .touch_console_session(&id, UnixMs(now.0 + IDLE_TIMEOUT_MS))
            .await?;
    }
    Ok((user, id))
}

/// How a console request proves it was made by Usher's own pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfCheck {
    /// Only the `X-CSRF-Token` header counts (JSON API).
    Header,
    /// The caller checks the form's `_csrf` field itself (console forms).
    Deferred,
}

/// Authenticates a request: an API key, else a console session (with CSRF for unsafe methods).
///
/// # Errors
/// `unauthorized` (nothing valid presented), `csrf_invalid`, `password_change_required`.
pub async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
    csrf: CsrfCheck,
) -> ApiResult<Caller> {
    let ClientIp(address) = ClientIp::from_request_parts(parts, state).await?;
    match presented(parts) {
        Presented::Bearer(b) => Ok(Caller {
            principal: Principal::Key(api_key(state, &b).await?),
            address,
            csrf: None,
            session: None,
        }),
        Presented::Session(secret) => {
            let (user, id) = console_user(state, &secret).await?;
            let unsafe_method =
                !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            if unsafe_method && csrf == CsrfCheck::Header {
                let sent = parts
                    .headers
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !state.hasher.check_csrf(&secret, sent) {
                    return Err(ApiError::CsrfInvalid);
                }
            }
            if user.must_change_password {
                return Err(ApiError::PasswordChangeRequired);
            }
            Ok(Caller {
                principal: Principal::User(user),
                address,
                csrf: Some(state.hasher.csrf_token(&secret)),
                session: Some(id),
            })
        }
        Presented::Nothing => Err(ApiError::Unauthorized),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        authenticate(parts, &AppState::from_ref(state), CsrfCheck::Header).await
    }
}

/// A permission as a type, for [`Authorized`].
pub trait Needs: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! needs {
    ($($(#[$doc:meta])* $name:ident => $perm:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Needs for $name {
                const PERMISSION: Permission = Permission::$perm;
            }
        )*
    };
}

needs! {
    /// Read the admin records.
    Read => Read;
    /// Read tickets.
    ReadTickets => ReadTickets;
    /// Register tickets.
    RegisterTickets => RegisterTickets;
    /// Revoke tickets.
    RevokeTickets => RevokeTickets;
    /// End sessions.
    EndSessions => EndSessions;
    /// Change anything.
    Manage => Manage;
}

/// A caller holding permission `P`, checked before the body is read.
#[derive(Debug)]
pub struct Authorized<P: Needs>(pub Caller, pub PhantomData<P>);

impl<P: Needs, S: Send + Sync> FromRequestParts<S> for Authorized<P>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Authorized(caller, PhantomData))
    }
}
