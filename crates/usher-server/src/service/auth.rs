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

use std::net::IpAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use usher_core::admin::{Actor, AdminUser, ConsoleSession, Role, UserName};
use usher_core::clock::UnixMs;
use usher_core::ids::random_b64;
use usher_core::secret::{ApiKeySecret, SecretHash};
use usher_core::store::{ApiKey, Store, StoreError};

pub use super::caller::{Caller, Principal};
use crate::service::{Error, Result};
use crate::state::AppState;

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

/// Hashes a password with argon2id and a fresh salt, off the async runtime.
///
/// # Errors
/// `internal` if hashing fails (it does not for valid parameters).
pub async fn hash_password(password: String) -> Result<String> {
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
    .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
    .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
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
pub fn check_password(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=256).contains(&n) || password.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!(
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
) -> Result<AdminUser> {
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
        crate::service::audit::append(
            store,
            Actor::System("bootstrap".into()),
            "user.create",
            "user:admin",
            None,
            "role=admin, first run",
        )
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
    Internal(Error),
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
        crate::service::audit::record_system(
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
    crate::service::audit::record_system(
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

/// The API key a bearer credential names, checked in constant time, its last use noted.
///
/// # Errors
/// `unauthorized` for a malformed, unknown or wrong key.
pub async fn api_key(state: &AppState, bearer: &str) -> Result<ApiKey> {
    let presented = ApiKeySecret::parse(bearer).ok_or(Error::Unauthorized)?;
    let key = state
        .store
        .api_key(&presented.id)
        .await?
        .ok_or(Error::Unauthorized)?;
    if !key
        .secret_hash
        .ct_eq(&state.hasher.api_key_secret(&presented.secret))
    {
        return Err(Error::Unauthorized);
    }
    state.store.touch_api_key(&key.id).await?;
    Ok(key)
}

/// The console session of `secret` and its user, its idle timer pushed back.
///
/// # Errors
/// `unauthorized` when the session is unknown, lapsed or past its lifetime, or its user is gone.
pub async fn console_user(state: &AppState, secret: &str) -> Result<(AdminUser, SecretHash)> {
    let id = state.hasher.console_session(secret);
    let session = state
        .store
        .console_session(&id)
        .await?
        .ok_or(Error::Unauthorized)?;
    let now = state.store.now();
    if now.0 - session.created_at.0 > MAX_SESSION_MS {
        state.store.delete_console_session(&id).await?;
        return Err(Error::Unauthorized);
    }
    let user = state
        .store
        .admin_user(&session.user)
        .await?
        .ok_or(Error::Unauthorized)?;
    if now.0 - session.last_seen.0 >= TOUCH_EVERY_MS {
        state
            .store
            .touch_console_session(&id, UnixMs(now.0 + IDLE_TIMEOUT_MS))
            .await?;
    }
    Ok((user, id))
}
