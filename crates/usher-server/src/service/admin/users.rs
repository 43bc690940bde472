//! Console users: list, add (a password made by Usher is shown once and must be changed at the first
//! login), change role or reset the password, lift a user's login wait, delete; and a user's own password
//! change. The last user with the admin role keeps it. Changes are applied by the store to the record it
//! holds ([`UserChange`]), so a role change and a password change made at the same time both stay.

use serde::Deserialize;
use usher_core::admin::{Actor, AdminUser, Permission, Role, UserChange, UserName};
use usher_core::secret::SecretHash;
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
    let (user, password) = create_user(
        &*state.store,
        &state.passwords,
        name,
        body.role,
        body.password,
    )
    .await?;
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
    passwords: &auth::PasswordChecks,
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
    let now = store.now();
    let user = AdminUser {
        name,
        role,
        password_hash: passwords.hash(password.clone()).await?,
        must_change_password: made,
        created_at: now,
        updated_at: now,
    };
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

/// Changes a user's role or resets the password (which ends the user's console sessions); returns the
/// user and a new password when reset. Only the fields named change in the store's record.
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
    let user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(Error::NotFound(Record::User))?;
    let mut change = UserChange::at(state.store.now());
    let mut detail = Vec::new();
    if let Some(role) = patch.role {
        if user.role == Role::Admin
            && role != Role::Admin
            && admins_besides(state, &name).await? == 0
        {
            return Err(Error::LastAdmin);
        }
        change.role = Some(role);
        detail.push(format!("role={role}"));
    }
    let mut password = None;
    if patch.reset_password {
        let p = auth::generate_password();
        change.password = Some((state.passwords.hash(p.clone()).await?, true));
        password = Some(p);
        detail.push("password reset".into());
    }
    let user = state
        .store
        .change_admin_user(&name, change)
        .await?
        .ok_or(Error::NotFound(Record::User))?;
    if password.is_some() {
        let ended = state.store.end_console_sessions(&name, None).await?;
        detail.push(format!("sessions ended={ended}"));
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

/// Lifts a user's login wait at once (failed attempts by anyone, from anywhere, made it); the user's
/// next login is checked as a first one. Attempts counted per client network stay.
///
/// # Errors
/// `user_unknown`; `forbidden`.
pub async fn unlock_user(state: &AppState, caller: &Caller, name: &str) -> Result<AdminUser> {
    caller.require(Permission::Manage)?;
    let name = UserName::parse(name).map_err(|_| Error::NotFound(Record::User))?;
    let user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(Error::NotFound(Record::User))?;
    state
        .store
        .clear_login_failures(&auth::user_attempts_key(&name))
        .await?;
    audit::record(state, caller, "user.unlock", &format!("user:{name}"), "").await;
    Ok(user)
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

/// A console user's own password change (the current password proves it is them), throttled and audited
/// like a login: the attempt is counted per user and client network before the current password is
/// checked, and a wrong one is a `login.failed` entry. On success only the password is written (a role
/// change made meanwhile stays) and the user's other console sessions end; `session` (the one making the
/// change) stays.
///
/// # Errors
/// `login_failed` for a wrong current password, `invalid_request` for a weak new one, `rate_limited`
/// while the user or network waits or no password check is free.
pub async fn change_own_password(
    state: &AppState,
    user: &AdminUser,
    session: &SecretHash,
    current: &str,
    new: &str,
    address: std::net::IpAddr,
) -> Result<()> {
    auth::check_password(new)?;
    if new == current {
        return Err(Error::InvalidRequest(
            "password: the new password must differ from the current one".into(),
        ));
    }
    let attempt = auth::Attempt::begin(state, Some(&user.name), address).await?;
    let checked = state
        .passwords
        .verify(current.to_owned(), user.password_hash.clone())
        .await;
    match checked {
        Ok(true) => {}
        Ok(false) => {
            attempt.failed();
            audit::record_system(
                state,
                Actor::User(user.name.to_string()),
                "login.failed",
                &format!("user:{}", user.name),
                Some(address),
                "password change",
            )
            .await;
            return Err(Error::LoginFailed);
        }
        Err(e) => return Err(attempt.abandoned(e).await),
    }
    let hash = match state.passwords.hash(new.to_owned()).await {
        Ok(hash) => hash,
        Err(e) => return Err(attempt.abandoned(e).await),
    };
    attempt.succeeded().await?;
    let change = UserChange {
        password: Some((hash, false)),
        ..UserChange::at(state.store.now())
    };
    if state
        .store
        .change_admin_user(&user.name, change)
        .await?
        .is_none()
    {
        return Err(Error::NotFound(Record::User));
    }
    let ended = state
        .store
        .end_console_sessions(&user.name, Some(session))
        .await?;
    audit::record_system(
        state,
        Actor::User(user.name.to_string()),
        "user.password",
        &format!("user:{}", user.name),
        Some(address),
        &format!("other sessions ended={ended}"),
    )
    .await;
    Ok(())
}

/// Whether the caller is the console user `name`.
pub fn is_self(caller: &Caller, name: &UserName) -> bool {
    matches!(&caller.principal, Principal::User(u) if &u.name == name)
}
