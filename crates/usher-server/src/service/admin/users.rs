//! Console users: list, add (a password made by Usher is shown once and must be changed at the first
//! login), change role or reset the password, delete; and a user's own password change. The last user
//! with the admin role keeps it.

use serde::Deserialize;
use usher_core::admin::{AdminUser, Permission, Role, UserName};
use usher_core::store::Store;

use crate::service::audit;
use crate::service::auth;
use crate::service::{Caller, Error, Principal, Record, Result};
use crate::state::AppState;

/// Every console user.
///
/// # Errors
/// `forbidden`; the store's error.
pub async fn list_users(state: &AppState, caller: &Caller) -> Result<Vec<AdminUser>> {
    caller.require(Permission::Read)?;
    Ok(state.store.admin_users().await?)
}

/// Body of `POST /api/v1/admin-users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub name: String,
    /// `admin`, `support` or `observer`.
    #[schema(value_type = String, pattern = "^(admin|support|observer)$")]
    pub role: Role,
    /// The password; without one Usher makes one (answered once) that must be changed at first login.
    #[serde(default)]
    #[schema(min_length = 12, max_length = 256)]
    pub password: Option<String>,
}

/// Body of `PATCH /api/v1/admin-users/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A new role.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(admin|support|observer)$")]
    pub role: Option<Role>,
    /// Reset the password: Usher makes one (answered once) that must be changed at the next login.
    #[serde(default)]
    pub reset_password: bool,
}

fn parse_name(name: &str) -> Result<UserName> {
    UserName::parse(name).map_err(|e| Error::InvalidRequest(format!("name: {e}")))
}

/// Adds a user; returns it and, when Usher made the password, that password (shown once).
///
/// # Errors
/// `invalid_request`, `user_exists`; `forbidden`.
pub async fn add_user(
    state: &AppState,
    caller: &Caller,
    body: NewUser,
) -> Result<(AdminUser, Option<String>)> {
    caller.require(Permission::Manage)?;
    let name = parse_name(&body.name)?;
    let (user, password) = create_user(&*state.store, name, body.role, body.password).await?;
    audit::record(
        state,
        caller,
        "user.create",
        &format!("user:{}", user.name),
        &format!("role={}", user.role),
    )
    .await;
    Ok((user, password))
}

/// Stores a new console user with `password` (checked), or with one Usher makes (returned, to be shown
/// once, and to be changed at the first login). No caller and no audit entry: [`add_user`] adds both, and
/// `usher admin add-user` runs it on a stopped server and audits it as the CLI.
///
/// # Errors
/// `invalid_request` for a weak password, `user_exists`; the store's error.
pub async fn create_user(
    store: &dyn Store,
    name: UserName,
    role: Role,
    password: Option<String>,
) -> Result<(AdminUser, Option<String>)> {
    let (password, made) = match password {
        Some(p) => {
            auth::check_password(&p)?;
            (p, false)
        }
        None => (auth::generate_password(), true),
    };
    let user = auth::new_user(store, name, role, password.clone(), made).await?;
    if !store.create_admin_user(user.clone()).await? {
        return Err(Error::UserExists);
    }
    Ok((user, made.then_some(password)))
}

async fn admins_besides(state: &AppState, name: &UserName) -> Result<usize> {
    Ok(state
        .store
        .admin_users()
        .await?
        .iter()
        .filter(|u| u.role == Role::Admin && &u.name != name)
        .count())
}

/// Changes a user's role or resets the password; returns the user and a new password when reset.
///
/// # Errors
/// `user_unknown`, `last_admin`; `forbidden`.
pub async fn change_user(
    state: &AppState,
    caller: &Caller,
    name: &str,
    patch: UserPatch,
) -> Result<(AdminUser, Option<String>)> {
    caller.require(Permission::Manage)?;
    let name = UserName::parse(name).map_err(|_| Error::NotFound(Record::User))?;
    let mut user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(Error::NotFound(Record::User))?;
    let mut detail = Vec::new();
    if let Some(role) = patch.role {
        if user.role == Role::Admin
            && role != Role::Admin
            && admins_besides(state, &name).await? == 0
        {
            return Err(Error::LastAdmin);
        }
        user.role = role;
        detail.push(format!("role={role}"));
    }
    let mut password = None;
    if patch.reset_password {
        let p = auth::generate_password();
        user.password_hash = auth::hash_password(p.clone()).await?;
        user.must_change_password = true;
        password = Some(p);
        detail.push("password reset".into());
    }
    user.updated_at = state.store.now();
    if !state.store.update_admin_user(user.clone()).await? {
        return Err(Error::NotFound(Record::User));
    }
    audit::record(
        state,
        caller,
        "user.update",
        &format!("user:{}", user.name),
        &detail.join(" "),
    )
    .await;
    Ok((user, password))
}

/// Deletes a user and ends their console sessions (not the last admin).
///
/// # Errors
/// `user_unknown`, `last_admin`; `forbidden`.
pub async fn remove_user(state: &AppState, caller: &Caller, name: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let name = UserName::parse(name).map_err(|_| Error::NotFound(Record::User))?;
    let user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(Error::NotFound(Record::User))?;
    if user.role == Role::Admin && admins_besides(state, &name).await? == 0 {
        return Err(Error::LastAdmin);
    }
    if !state.store.delete_admin_user(&name).await? {
        return Err(Error::NotFound(Record::User));
    }
    audit::record(state, caller, "user.delete", &format!("user:{name}"), "").await;
    Ok(())
}

/// A console user's own password change (the current password proves it is them).
///
/// # Errors
/// `login_failed` for a wrong current password, `invalid_request` for a weak new one.
pub async fn change_own_password(
    state: &AppState,
    user: &AdminUser,
    current: &str,
    new: &str,
    address: std::net::IpAddr,
) -> Result<()> {
    if !auth::verify_password(current.to_owned(), user.password_hash.clone()).await {
        return Err(Error::LoginFailed);
    }
    auth::check_password(new)?;
    if new == current {
        return Err(Error::InvalidRequest(
            "password: the new password must differ from the current one".into(),
        ));
    }
    let mut u = user.clone();
    u.password_hash = auth::hash_password(new.to_owned()).await?;
    u.must_change_password = false;
    u.updated_at = state.store.now();
    state.store.update_admin_user(u).await?;
    audit::record_system(
        state,
        usher_core::admin::Actor::User(user.name.to_string()),
        "user.password",
        &format!("user:{}", user.name),
        Some(address),
        "",
    )
    .await;
    Ok(())
}

/// Whether the caller is the console user `name`.
pub fn is_self(caller: &Caller, name: &UserName) -> bool {
    matches!(&caller.principal, Principal::User(u) if &u.name == name)
}
