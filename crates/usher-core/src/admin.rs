//! The admin console's records: admin users and their roles, console sessions, the audit log and the
//! per-minute counts of admit outcomes the dashboard shows.
//!
//! Passwords are stored only as PHC strings (argon2, made by the server); console session ids only as
//! keyed hashes, like tokens and API keys. What a role may do is decided here, once, by [`Role::allows`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;
use crate::ids::IdError;
use crate::secret::SecretHash;

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything.
    Admin,
    /// Read everything, revoke tickets, erase a ticket's personal data, end sessions.
    Support,
    /// Read only.
    Observer,
}

impl Role {
    /// The role's name as the API and the CLI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Observer => "observer",
        }
    }

    /// Parses `admin`, `support` or `observer`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }

    /// Whether the role grants `perm`.
    pub fn allows(self, perm: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Support => matches!(
                perm,
                Permission::Read
                    | Permission::ReadTickets
                    | Permission::RevokeTickets
                    | Permission::ErasePersonalData
                    | Permission::EndSessions
            ),
            Role::Observer => matches!(perm, Permission::Read | Permission::ReadTickets),
        }
    }
}

impl Permission {
    /// The API-key scope that grants this permission (`admin` grants every one).
    pub fn scope_name(self) -> &'static str {
        match self {
            Permission::ReadTickets
            | Permission::RegisterTickets
            | Permission::RevokeTickets
            | Permission::ErasePersonalData => "tickets",
            Permission::Read | Permission::EndSessions | Permission::Manage => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kind of thing the admin API and the console let a caller do. Every admin route names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Read shows, sessions, the CDN pool, GeoIP, keys, users, the dashboard and the audit log.
    Read,
    /// Read and search tickets and their usage (also an API key with the `tickets` scope).
    ReadTickets,
    /// Register tickets (an API key with the `tickets` scope, or an admin).
    RegisterTickets,
    /// Revoke tickets (also an API key with the `tickets` scope).
    RevokeTickets,
    /// Erase a ticket's personal data (also an API key with the `tickets` scope: the ticket site answers
    /// its buyers' erasure requests, as it answers their refunds with a revoke).
    ErasePersonalData,
    /// End playback sessions.
    EndSessions,
    /// Change anything else: shows, CDNs, GeoIP, API keys, users.
    Manage,
}

/// An admin user's name: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

impl UserName {
    /// Parses a user name.
    ///
    /// # Errors
    /// [`IdError`] for any other text.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 64 {
            return Err(IdError::Length {
                what: "user name",
                min: 1,
                max: 64,
            });
        }
        let ok = s.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
        });
        if !ok {
            return Err(IdError::Charset {
                what: "user name",
                allowed: "a-z, 0-9, '.', '_' and '-' (starting with a letter or digit)",
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<UserName> for String {
    fn from(v: UserName) -> String {
        v.0
    }
}

impl TryFrom<String> for UserName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

/// An admin user of the console.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminUser {
    /// Login name.
    pub name: UserName,
    /// What the user may do.
    pub role: Role,
    /// The password as an argon2 PHC string.
    pub password_hash: String,
    /// The password was made by Usher (bootstrap, `add-user` without one): it must be changed at the
    /// next login before anything else.
    pub must_change_password: bool,
    /// When the user was added.
    pub created_at: UnixMs,
    /// When the user (or the password) last changed.
    pub updated_at: UnixMs,
}

impl fmt::Debug for AdminUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminUser")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("must_change_password", &self.must_change_password)
            .finish_non_exhaustive()
    }
}

/// A logged-in console session, named by the keyed hash of its cookie's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSession {
    /// Keyed hash of the cookie's secret.
    pub id: SecretHash,
    /// Who is logged in.
    pub user: UserName,
    /// When the session began.
    pub created_at: UnixMs,
    /// Last request seen (the idle timeout counts from here).
    pub last_seen: UnixMs,
    /// When it lapses without a request.
    pub expires_at: UnixMs,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// An API key, by id.
    ApiKey(String),
    /// A console user, by name.
    User(String),
    /// Usher itself (bootstrap, `usher admin add-user`).
    System(String),
}

impl Actor {
    /// `api_key`, `user` or `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::ApiKey(_) => "api_key",
            Actor::User(_) => "user",
            Actor::System(_) => "system",
        }
    }

    /// The key id, user name or system component.
    pub fn id(&self) -> &str {
        match self {
            Actor::ApiKey(s) | Actor::User(s) | Actor::System(s) => s,
        }
    }
}

/// One change, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (the store's clock).
    pub at: UnixMs,
    /// Who.
    pub actor: Actor,
    /// What, dotted (`show.put`, `ticket.revoke`, `cdn.patch`, `login.failed`).
    pub action: String,
    /// The record changed (`show:demo`, `ticket:t_…`), empty when none.
    pub target: String,
    /// The client address the request came from.
    pub address: Option<String>,
    /// A short, secret-free note (`enabled=false`).
    #[serde(default)]
    pub detail: String,
}

/// Which audit entries to read. Every field narrows; the newest come first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this actor id (key id or user name).
    pub actor: Option<String>,
    /// Only actions starting with this (`show.` or `show.put`).
    pub action: Option<String>,
    /// Only targets containing this.
    pub target: Option<String>,
    /// Only entries at or after.
    pub since: Option<UnixMs>,
    /// Only entries before.
    pub until: Option<UnixMs>,
    /// At most this many.
    pub limit: usize,
}

impl AuditFilter {
    /// Whether `e` passes the filter (the limit aside).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.actor.as_ref().is_none_or(|a| e.actor.id() == a)
            && self
                .action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
            && self
                .target
                .as_ref()
                .is_none_or(|t| e.target.contains(t.as_str()))
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at < u)
    }
}

/// How failed logins under one key (a user, or a client network) slow further attempts down: the first
/// [`Backoff::free`] attempts within the window pass at once; from then on each attempt must wait for the
/// one before it, twice as long as the last wait, from [`Backoff::initial_ms`] up to [`Backoff::max_ms`].
/// Nothing locks for longer than `max_ms`, so no one can lock a user out for long; an admin can lift the
/// wait at once (`unlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Attempts that pass without waiting.
    pub free: u32,
    /// The first wait, in milliseconds.
    pub initial_ms: i64,
    /// The longest wait, in milliseconds.
    pub max_ms: i64,
    /// How long the attempts of a key are remembered after its last one, in milliseconds.
    pub window_ms: i64,
}

impl Backoff {
    /// The wait after the `attempts`-th attempt within the window (0 while attempts stay under `free`).
    pub fn wait_after(&self, attempts: u32) -> i64 {
        if attempts < self.free {
            return 0;
        }
        let doublings = (attempts - self.free).min(40);
        self.initial_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_ms)
    }

    /// How long a key's record is kept after an attempt that set a wait of `wait_ms`.
    pub fn keep_ms(&self, wait_ms: i64) -> i64 {
        self.window_ms.max(wait_ms)
    }
}

/// The store's verdict on a login attempt, counted before its password is checked
/// ([`crate::store::Store::login_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// Check the password: this is attempt number `attempts` of the window.
    Allowed {
        /// Attempts counted in the window, this one included.
        attempts: u32,
    },
    /// Refused without checking (and without counting): the key's wait ends in `retry_after_ms`.
    Wait {
        /// Milliseconds until the next attempt is allowed.
        retry_after_ms: i64,
    },
}

/// A change of an admin user's record, applied by the store to the record it holds (so two changes made
/// at the same time both take effect: a role change never undoes a password change, or the reverse).
#[derive(Clone, PartialEq, Eq)]
pub struct UserChange {
    /// A new role.
    pub role: Option<Role>,
    /// A new password (argon2 PHC string) and whether it must be changed at the next login.
    pub password: Option<(String, bool)>,
    /// When the change was made.
    pub at: UnixMs,
}

impl UserChange {
    /// A change made at `at` that changes nothing yet.
    pub fn at(at: UnixMs) -> Self {
        Self {
            role: None,
            password: None,
            at,
        }
    }

    /// Applies the change to `user`.
    pub fn apply(&self, user: &mut AdminUser) {
        if let Some(role) = self.role {
            user.role = role;
        }
        if let Some((hash, must_change)) = &self.password {
            user.password_hash.clone_from(hash);
            user.must_change_password = *must_change;
        }
        user.updated_at = self.at;
    }
}

impl fmt::Debug for UserChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserChange")
            .field("role", &self.role)
            .field("password", &self.password.as_ref().map(|(_, m)| m))
            .field("at", &self.at)
            .finish()
    }
}

/// How many admits ended with `outcome` in the minute starting at `minute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCount {
    /// Start of the minute (unix ms, a multiple of 60,000).
    pub minute: UnixMs,
    /// `admitted`, `reattached`, or a refusal's code (`ticket_revoked`, `geo_blocked`, …).
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// The start of the minute holding `t`.
pub fn minute_of(t: UnixMs) -> UnixMs {
    UnixMs(t.0 - t.0.rem_euclid(60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_the_issue_says() {
        use Permission::*;
        for p in [
            Read,
            ReadTickets,
            RegisterTickets,
            RevokeTickets,
            EndSessions,
            Manage,
        ] {
            assert!(Role::Admin.allows(p));
        }
        assert!(Role::Support.allows(RevokeTickets) && Role::Support.allows(EndSessions));
        assert!(!Role::Support.allows(Manage) && !Role::Support.allows(RegisterTickets));
        assert!(Role::Observer.allows(Read));
        assert!(!Role::Observer.allows(RevokeTickets) && !Role::Observer.allows(EndSessions));
    }

    #[test]
    fn user_names() {
        assert!(UserName::parse("admin").is_ok());
        assert!(UserName::parse("jane.doe-2").is_ok());
        for bad in ["", "Admin", ".x", "a b", "é", &"a".repeat(65)] {
            assert!(UserName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_hides_the_password_hash() {
        let u = AdminUser {
            name: UserName::parse("a").unwrap(),
            role: Role::Admin,
            password_hash: "$argon2id$secret".into(),
            must_change_password: false,
            created_at: UnixMs(0),
            updated_at: UnixMs(0),
        };
        assert!(!format!("{u:?}").contains("argon2"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff {
            free: 3,
            initial_ms: 1000,
            max_ms: 60_000,
            window_ms: 900_000,
        };
        let waits: Vec<i64> = (1..=11).map(|n| b.wait_after(n)).collect();
        assert_eq!(
            waits,
            [
                0, 0, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000
            ]
        );
        assert_eq!(b.wait_after(u32::MAX), 60_000);
        assert_eq!(b.keep_ms(60_000), 900_000);
    }

    #[test]
    fn a_user_change_touches_only_what_it_names() {
        let mut u = AdminUser {
            name: UserName::parse("a").unwrap(),
            role: Role::Admin,
            password_hash: "old".into(),
            must_change_password: true,
            created_at: UnixMs(0),
            updated_at: UnixMs(0),
        };
        UserChange {
            password: Some(("new".into(), false)),
            ..UserChange::at(UnixMs(5))
        }
        .apply(&mut u);
        assert_eq!(
            (u.role, u.password_hash.as_str(), u.must_change_password),
            (Role::Admin, "new", false)
        );
        UserChange {
            role: Some(Role::Observer),
            ..UserChange::at(UnixMs(6))
        }
        .apply(&mut u);
        assert_eq!((u.role, u.password_hash.as_str()), (Role::Observer, "new"));
        assert_eq!(u.updated_at, UnixMs(6));
        let change = UserChange {
            password: Some(("$argon2id$x".into(), true)),
            ..UserChange::at(UnixMs(7))
        };
        assert!(!format!("{change:?}").contains("argon2"));
    }

    #[test]
    fn minutes() {
        assert_eq!(minute_of(UnixMs(125_000)), UnixMs(120_000));
    }
}
