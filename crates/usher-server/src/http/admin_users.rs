//! Console users (`/api/v1/admin-users`): list, add (a password made by Usher is shown once and must be
//! changed at the first login), change role or password, delete; and a user's own password change.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::admin::{AdminUser, Permission, Role, UserName};

use crate::audit;
use crate::auth::{self, Authorized, Caller, Manage, Principal, Read};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// The JSON view of a user (never the password hash).
pub fn user_view(u: &AdminUser) -> Value {
    json!({
        "name": u.name,
        "role": u.role,
        "must_change_password": u.must_change_password,
        "created_at": u.created_at.to_rfc3339(),
        "updated_at": u.updated_at.to_rfc3339(),
    })
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

fn parse_name(name: &str) -> ApiResult<UserName> {
    UserName::parse(name).map_err(|e| ApiError::InvalidRequest(format!("name: {e}")))
}

/// Adds a user; returns it and, when Usher made the password, that password (shown once).
///
/// # Errors
/// `invalid_request`, `user_exists`; `forbidden`.
pub async fn add_user(
    state: &AppState,
    caller: &Caller,
    body: NewUser,
) -> ApiResult<(AdminUser, Option<String>)> {
    caller.require(Permission::Manage)?;
    let name = parse_name(&body.name)?;
    let (password, made) = match body.password {
        Some(p) => {
            auth::check_password(&p)?;
            (p, false)
        }
        None => (auth::generate_password(), true),
    };
    let user = auth::new_user(&*state.store, name, body.role, password.clone(), made).await?;
    if !state.store.create_admin_user(user.clone()).await? {
        return Err(ApiError::UserExists);
    }
    audit::record(
        state,
        caller,
        "user.create",
        &format!("user:{}", user.name),
        &format!("role={}", user.role),
    )
    .await;
    Ok((user, made.then_some(password)))
}

async fn admins_besides(state: &AppState, name: &UserName) -> ApiResult<usize> {
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
) -> ApiResult<(AdminUser, Option<String>)> {
    caller.require(Permission::Manage)?;
    let name = UserName::parse(name).map_err(|_| ApiError::NotFound("user_unknown"))?;
    let mut user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(ApiError::NotFound("user_unknown"))?;
    let mut detail = Vec::new();
    if let Some(role) = patch.role {
        if user.role == Role::Admin
            && role != Role::Admin
            && admins_besides(state, &name).await? == 0
        {
            return Err(ApiError::LastAdmin);
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
        return Err(ApiError::NotFound("user_unknown"));
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
pub async fn remove_user(state: &AppState, caller: &Caller, name: &str) -> ApiResult<()> {
    caller.require(Permission::Manage)?;
    let name = UserName::parse(name).map_err(|_| ApiError::NotFound("user_unknown"))?;
    let user = state
        .store
        .admin_user(&name)
        .await?
        .ok_or(ApiError::NotFound("user_unknown"))?;
    if user.role == Role::Admin && admins_besides(state, &name).await? == 0 {
        return Err(ApiError::LastAdmin);
    }
    if !state.store.delete_admin_user(&name).await? {
        return Err(ApiError::NotFound("user_unknown"));
    }
    audit::record(state, caller, "user.delete", &format!("user:{name}"), "").await;
    Ok(())
}

/// `GET /api/v1/admin-users`.
#[utoipa::path(
    get,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    responses((status = 200, description = "`{admin_users: [{name, role, must_change_password, created_at, updated_at}]}`.", body = crate::openapi::schemas::AdminUserList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: Authorized<Read>,
) -> ApiResult<Json<Value>> {
    let users = state.store.admin_users().await?;
    Ok(Json(
        json!({"admin_users": users.iter().map(user_view).collect::<Vec<_>>()}),
    ))
}

/// `POST /api/v1/admin-users`: 201; `password` in the answer only when Usher made it.
#[utoipa::path(
    post,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user; `password` only when Usher made it.", body = crate::openapi::schemas::AdminUserView),
        (status = 409, description = "`user_exists`: a user of that name exists."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiJson(body): ApiJson<NewUser>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (user, password) = add_user(&state, &caller, body).await?;
    let mut v = user_view(&user);
    if let Some(p) = password {
        v["password"] = json!(p);
    }
    Ok((StatusCode::CREATED, Json(v)))
}

/// `PATCH /api/v1/admin-users/{name}`: `role`, `reset_password`.
#[utoipa::path(
    patch,
    path = "/api/v1/admin-users/{name}",
    tag = "admin-users",
    params(("name" = String, Path, description = "The user's name.")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user; `password` when it was reset.", body = crate::openapi::schemas::AdminUserView),
        (status = 404, description = "`user_unknown`: no such user."),
        (status = 409, description = "`last_admin`: the last admin keeps the admin role."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn patch_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(name): ApiPath<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult<Json<Value>> {
    let (user, password) = change_user(&state, &caller, &name, patch).await?;
    let mut v = user_view(&user);
    if let Some(p) = password {
        v["password"] = json!(p);
    }
    Ok(Json(v))
}

/// `DELETE /api/v1/admin-users/{name}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/admin-users/{name}",
    tag = "admin-users",
    params(("name" = String, Path, description = "The user's name.")),
    responses(
        (status = 204, description = "Deleted; the user's console sessions ended."),
        (status = 404, description = "`user_unknown`: no such user."),
        (status = 409, description = "`last_admin`: the last admin cannot be deleted."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    remove_user(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
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
) -> ApiResult<()> {
    if !auth::verify_password(current.to_owned(), user.password_hash.clone()).await {
        return Err(ApiError::LoginFailed);
    }
    auth::check_password(new)?;
    if new == current {
        return Err(ApiError::InvalidRequest(
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
