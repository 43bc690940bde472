//! Who is calling and what they may do: API keys (`Authorization: Bearer`) and console users (a session
//! cookie plus a CSRF token), one [`Caller`] for both, so the JSON API and the console share every action.
//!
//! - Passwords are argon2id PHC strings, hashed and checked off the async runtime, at most
//!   `login.concurrent_checks` at once ([`PasswordChecks`], in `service::passwords`).
//! - A console session is a random secret in an HttpOnly, `SameSite=Strict` cookie (`Secure` when the
//!   public URL is https); the store keeps only its keyed hash, with an idle timeout
//!   ([`IDLE_TIMEOUT_MS`]) and an absolute lifetime ([`MAX_SESSION_MS`]).
//! - CSRF: the synchronizer token is an HMAC of the session's secret under the server key
//!   ([`usher_core::secret::SecretHasher::csrf_token`]), sent by forms as `_csrf` and by scripts as
//!   `X-CSRF-Token`, and compared in constant time. API keys need none (no ambient credential).
//! - Login attempts (and password changes) are counted per user name and per client network (an IPv4
//!   address, an IPv6 /64) in the store *before* the password is checked, in one atomic step
//!   ([`Store::login_attempt`]), so parallel guesses cannot all pass a check made before any of them
//!   failed. Past the free attempts each one waits twice as long as the last ([`Backoff`], `[login]`),
//!   up to a cap; an admin can lift a user's wait (`service::admin::users::unlock_user`).
//! - A user whose password Usher made (the first-run `admin`, `add-user` without a password) must change
//!   it before anything else.

use std::net::IpAddr;

use usher_core::admin::{Actor, AdminUser, Backoff, ConsoleSession, LoginGate, Role, UserName};
use usher_core::clock::UnixMs;
use usher_core::ids::random_b64;
use usher_core::secret::{ApiKeySecret, SecretHash};
use usher_core::store::{ApiKey, Store};

pub use super::caller::{Caller, Principal};
pub use super::passwords::{PasswordChecks, hash_password};
use crate::service::{Error, Result};
use crate::state::AppState;

/// A console session ends after this long without a request.
pub const IDLE_TIMEOUT_MS: i64 = 30 * 60 * 1000;
/// A console session ends this long after login, whatever its activity.
pub const MAX_SESSION_MS: i64 = 12 * 3600 * 1000;
/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// How often (at most) a session's idle timer is pushed back in the store.
const TOUCH_EVERY_MS: i64 = 15_000;

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

/// A new console session: the cookie's secret (to set) and the user.
pub struct LoggedIn {
    /// The cookie's secret.
    pub secret: String,
    /// The user.
    pub user: AdminUser,
}

/// The key of a client's network for login attempts: the IPv4 address, or the IPv6 /64 (one subscriber
/// holds a whole /64, so counting single IPv6 addresses would count nothing).
pub fn client_network(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map(|n| n.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

/// The store key of a user's login attempts (the admin's unlock clears it).
pub fn user_attempts_key(name: &UserName) -> String {
    format!("user:{name}")
}

/// A login attempt (or a password change) counted under the client's network and, when the name is
/// valid, the user, before the password is checked.
pub(crate) struct Attempt<'a> {
    store: &'a dyn Store,
    address: (String, Backoff),
    user: Option<(String, Backoff)>,
}

fn wait_s(retry_after_ms: i64) -> u64 {
    u64::try_from(retry_after_ms.saturating_add(999) / 1000)
        .unwrap_or(1)
        .max(1)
}

impl<'a> Attempt<'a> {
    /// Counts the attempt; [`Error::LoginThrottled`] (nothing counted) while the network or the user
    /// must wait.
    ///
    /// # Errors
    /// [`Error::LoginThrottled`]; the store's error.
    pub(crate) async fn begin(
        state: &'a AppState,
        user: Option<&UserName>,
        address: IpAddr,
    ) -> Result<Attempt<'a>> {
        let store = &*state.store;
        let login = &state.config.login;
        let attempt = Attempt {
            store,
            address: (
                format!("addr:{}", client_network(address)),
                login.address_rule(),
            ),
            user: user.map(|u| (user_attempts_key(u), login.user_rule())),
        };
        if let LoginGate::Wait { retry_after_ms } = store
            .login_attempt(&attempt.address.0, &attempt.address.1)
            .await?
        {
            metrics::counter!("usher_logins_total", "outcome" => "throttled").increment(1);
            return Err(Error::LoginThrottled {
                retry_after_s: wait_s(retry_after_ms),
            });
        }
        if let Some((key, rule)) = &attempt.user
            && let LoginGate::Wait { retry_after_ms } = store.login_attempt(key, rule).await?
        {
            // not evaluated, so not counted against the network either
            store
                .undo_login_attempt(&attempt.address.0, &attempt.address.1)
                .await?;
            metrics::counter!("usher_logins_total", "outcome" => "throttled").increment(1);
            return Err(Error::LoginThrottled {
                retry_after_s: wait_s(retry_after_ms),
            });
        }
        Ok(attempt)
    }

    /// The password was right: the user's attempts are forgotten, and the network's attempt is taken
    /// back (a busy office's logins are no guesses).
    pub(crate) async fn succeeded(self) -> Result<()> {
        metrics::counter!("usher_logins_total", "outcome" => "ok").increment(1);
        self.store
            .undo_login_attempt(&self.address.0, &self.address.1)
            .await?;
        if let Some((key, _)) = &self.user {
            self.store.clear_login_failures(key).await?;
        }
        Ok(())
    }

    /// The password was wrong: the attempt stays counted.
    pub(crate) fn failed(self) {
        metrics::counter!("usher_logins_total", "outcome" => "wrong").increment(1);
    }

    /// The password was never checked (no free slot): the attempt is taken back, and `e` returned.
    pub(crate) async fn abandoned(self, e: Error) -> Error {
        metrics::counter!("usher_logins_total", "outcome" => "busy").increment(1);
        let undo = async {
            self.store
                .undo_login_attempt(&self.address.0, &self.address.1)
                .await?;
            if let Some((key, rule)) = &self.user {
                self.store.undo_login_attempt(key, rule).await?;
            }
            Ok::<_, Error>(())
        };
        match undo.await {
            Ok(()) => e,
            Err(undo) => undo,
        }
    }
}

/// Checks a name and password, the attempt counted first per user and per client network.
///
/// # Errors
/// `login_failed` for a wrong name or password; `rate_limited` while the user or network waits
/// ([`Error::LoginThrottled`]) or when no password check frees up in time ([`Error::Busy`]); the store's
/// error.
pub async fn login(
    state: &AppState,
    name: &str,
    password: &str,
    address: IpAddr,
) -> Result<LoggedIn> {
    let store = &*state.store;
    let name = UserName::parse(name.trim()).ok();
    let attempt = Attempt::begin(state, name.as_ref(), address).await?;
    let user = match &name {
        Some(n) => store.admin_user(n).await?,
        None => None,
    };
    let checked = match &user {
        Some(u) => {
            state
                .passwords
                .verify(password.to_owned(), u.password_hash.clone())
                .await
        }
        // an unknown name costs one argon2 run too, so timing does not tell names apart
        None => state
            .passwords
            .hash(password.to_owned())
            .await
            .map(|_| false),
    };
    let ok = match checked {
        Ok(ok) => ok,
        Err(e) => return Err(attempt.abandoned(e).await),
    };
    let Some(user) = user.filter(|_| ok) else {
        attempt.failed();
        crate::service::audit::record_system(
            state,
            match &name {
                Some(n) => Actor::User(n.to_string()),
                None => Actor::System("login".into()),
            },
            "login.failed",
            "",
            Some(address),
            "",
        )
        .await;
        return Err(Error::LoginFailed);
    };
    attempt.succeeded().await?;
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
    // under the current token key, or (while it is rotated) the key it replaces
    if !state
        .hasher
        .candidates(|h| h.api_key_secret(&presented.secret))
        .iter()
        .any(|hash| key.secret_hash.ct_eq(hash))
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
    let mut found = None;
    for id in state.hasher.candidates(|h| h.console_session(secret)) {
        if let Some(session) = state.store.console_session(&id).await? {
            found = Some((id, session));
            break;
        }
    }
    let (id, session) = found.ok_or(Error::Unauthorized)?;
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
