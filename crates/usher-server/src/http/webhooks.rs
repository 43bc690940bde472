//! Webhook endpoints and their deliveries (scope `admin`); each handler calls one action of
//! [`crate::service::webhooks`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use usher_core::ids::{DeliveryId, WebhookId};

use crate::http::auth::{Authorized, Manage, Read};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::views::webhooks::{DeliveryList, DeliveryView, WebhookList, WebhookView};
use crate::service::Result;
use crate::service::webhooks::{self, EndpointPatch, NewEndpoint};
use crate::state::AppState;

/// `GET /api/v1/webhooks`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    responses((status = 200, description = "Every endpoint, without secrets.", body = WebhookList)),
    security(("bearer" = ["admin"])),
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
) -> Result<Json<WebhookList>> {
    let all = webhooks::list(&state, &caller).await?;
    Ok(Json(WebhookList {
        webhooks: all.iter().map(WebhookView::from).collect(),
    }))
}

/// `POST /api/v1/webhooks`: 201 with the signing secret, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "webhooks",
    request_body = NewEndpoint,
    responses(
        (status = 201, description = "Registered: `secret` signs its deliveries (`Usher-Signature`), shown this once.", body = WebhookView),
        (status = 400, description = "`invalid_request`: the URL, an event type or the description is not valid, or 20 endpoints exist."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<WebhookView>)> {
    let e = webhooks::create(&state, &caller, body).await?;
    Ok((StatusCode::CREATED, Json(WebhookView::with_secret(&e))))
}

/// `GET /api/v1/webhooks/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint, without its secret.", body = WebhookView),
        (status = 404, description = "`webhook_unknown`: no such endpoint."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn read_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>> {
    let e = webhooks::find(&state, &caller, &id).await?;
    Ok(Json(WebhookView::from(&e)))
}

/// `PATCH /api/v1/webhooks/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path, description = "The endpoint's id.")),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "Changed.", body = WebhookView),
        (status = 400, description = "`invalid_request`: the URL, an event type or the description is not valid."),
        (status = 404, description = "`webhook_unknown`: no such endpoint."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn patch_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<EndpointPatch>,
) -> Result<Json<WebhookView>> {
    let e = webhooks::change(&state, &caller, &id, patch).await?;
    Ok(Json(WebhookView::from(&e)))
}

/// `DELETE /api/v1/webhooks/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{webhook_id}",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path, description = "The endpoint's id.")),
    responses(
        (status = 204, description = "Deleted: its queued deliveries are given up."),
        (status = 404, description = "`webhook_unknown`: no such endpoint."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    webhooks::remove(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/webhooks/{id}/secret`: a new signing secret, this once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/secret",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint with its new `secret` (the old one signs nothing more).", body = WebhookView),
        (status = 404, description = "`webhook_unknown`: no such endpoint."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WebhookView>> {
    let e = webhooks::rotate_secret(&state, &caller, &id).await?;
    Ok(Json(WebhookView::with_secret(&e)))
}

/// Query of the delivery log.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Most deliveries answered (1–200, default 50).
    #[param(minimum = 1, maximum = 200)]
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    50
}

/// `GET /api/v1/webhooks/{id}/deliveries`: the delivery log, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{webhook_id}/deliveries",
    tag = "webhooks",
    params(("webhook_id" = WebhookId, Path, description = "The endpoint's id."), DeliveryQuery),
    responses(
        (status = 200, description = "Its deliveries, newest first (the last week's).", body = DeliveryList),
        (status = 404, description = "`webhook_unknown`: no such endpoint."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Read>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryList>> {
    let all = webhooks::deliveries(&state, &caller, &id, q.limit).await?;
    Ok(Json(DeliveryList {
        deliveries: all.iter().map(DeliveryView::from).collect(),
    }))
}

/// `POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/resend`: send it again now.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/resend",
    tag = "webhooks",
    params(
        ("webhook_id" = WebhookId, Path, description = "The endpoint's id."),
        ("delivery_id" = DeliveryId, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 202, description = "Due now (the same event id and body).", body = DeliveryView),
        (status = 404, description = "`webhook_unknown`: no such endpoint; `delivery_unknown`: no such delivery of it."),
    ),
    security(("bearer" = ["admin"])),
)]
pub async fn resend_delivery(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<Manage>,
    ApiPath((id, delivery)): ApiPath<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>)> {
    let d = webhooks::resend(&state, &caller, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryView::from(&d))))
}
