//! Console users, never with their password hash; a password Usher made is answered once.

use serde::Serialize;
use usher_core::admin::AdminUser;
use utoipa::ToSchema;

/// A console user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Login name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// `admin`, `support` or `observer`.
    #[schema(pattern = "^(admin|support|observer)$")]
    pub role: &'static str,
    /// Whether the password must be changed at the next login.
    pub must_change_password: bool,
    /// When the user was added.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the user was last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// A password Usher made (creation without one, or a reset): in that answer only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl From<&AdminUser> for UserView {
    fn from(u: &AdminUser) -> Self {
        Self {
            name: u.name.to_string(),
            role: u.role.as_str(),
            must_change_password: u.must_change_password,
            created_at: u.created_at.to_rfc3339(),
            updated_at: u.updated_at.to_rfc3339(),
            password: None,
        }
    }
}

impl UserView {
    /// A user with the password Usher just made for it, if any.
    pub fn with_password(u: &AdminUser, password: Option<String>) -> Self {
        Self {
            password,
            ..Self::from(u)
        }
    }
}

/// Every console user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// The users.
    pub admin_users: Vec<UserView>,
}
