//! Who is calling: an API key or a console user, with the request's address; what they may do.

use std::net::IpAddr;

use usher_core::admin::{Actor, AdminUser, Permission};
use usher_core::secret::SecretHash;
use usher_core::store::ApiKey;

use crate::service::{Error, Result};

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
    pub fn require(&self, perm: Permission) -> Result<()> {
        if self.allows(perm) {
            return Ok(());
        }
        Err(match &self.principal {
            Principal::Key(_) => Error::Forbidden(perm.scope_name()),
            Principal::User(u) => Error::RoleForbidden(u.role.as_str()),
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
