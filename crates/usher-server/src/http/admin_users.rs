//! Console users (`/api/v1/admin-users`): list, add (a password made by Usher is shown once and must be
//! changed at the first login), change role or password, lift a login wait, delete; each handler calls one action of
//! [`crate::service::admin::users`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::views::users::{UserList, UserView};
use crate::service::Result;
use crate::service::admin::users::{self, NewUser, UserPatch};
use crate::state::AppState;

/// `GET /api/v1/admin-users`.
#[utoipa::path(
    get,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    responses((status = 200, description = "Every console user.", body = UserList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_users(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<UserList>> {
    let list = users::list_users(&state, &caller).await?;
    Ok(Json(UserList {
        admin_users: list.iter().map(UserView::from).collect(),
    }))
}

/// `POST /api/v1/admin-users`: 201; `password` in the answer only when Usher made it.
#[utoipa::path(
    post,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user; `password` only when Usher made it.", body = UserView),
        (status = 409, description = "`user_exists`: a user of that name exists."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiJson(body): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>)> {
    let (user, password) = users::add_user(&state, &caller, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(UserView::with_password(&user, password)),
    ))
}

/// `PATCH /api/v1/admin-users/{name}`: `role`, `reset_password`.
#[utoipa::path(
    patch,
    path = "/api/v1/admin-users/{name}",
    tag = "admin-users",
    params(("name" = String, Path, description = "The user's name.")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user; `password` when it was reset.", body = UserView),
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
) -> Result<Json<UserView>> {
    let (user, password) = users::change_user(&state, &caller, &name, patch).await?;
    Ok(Json(UserView::with_password(&user, password)))
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
) -> Result<StatusCode> {
    users::remove_user(&state, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin-users/{name}/unlock`: lifts the wait that failed logins put on the user (audited).
#[utoipa::path(
    post,
    path = "/api/v1/admin-users/{name}/unlock",
    tag = "admin-users",
    params(("name" = String, Path, description = "The user's name.")),
    responses(
        (status = 200, description = "The user; their next login is checked at once.", body = UserView),
        (status = 404, description = "`user_unknown`: no such user."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn unlock_user(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserView>> {
    let user = users::unlock_user(&state, &caller, &name).await?;
    Ok(Json(UserView::from(&user)))
}
