//! The ticket site's API: register (one or a batch), read status and usage, search, revoke, erase
//! personal data; each handler calls one action of [`crate::service::admin::tickets`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use usher_core::ids::TicketId;
use usher_core::ticket::TicketSpec;

use crate::http::auth::{
    Authorized, ErasePersonalData, ReadTickets, RegisterTickets, RevokeTickets,
};
use crate::http::extract::{ApiJson, ApiPath, ApiQuery};
use crate::http::views::tickets::{BatchAnswer, ErasureView, TicketList, TicketView};
use crate::service::Result;
use crate::service::admin::tickets;
use crate::state::AppState;

/// `POST /api/v1/tickets`: 201 with the new ticket, 200 when it repeats an identical registration.
#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    tag = "tickets",
    request_body = TicketSpec,
    responses(
        (status = 201, description = "Registered: the ticket with its `token` and `watch_url`.", body = TicketView),
        (status = 200, description = "An identical registration of this token was made before: that ticket.", body = TicketView),
        (status = 400, description = "`invalid_request`: a field is not valid (the detail names it)."),
        (status = 409, description = "`token_conflict`: the token is registered with other terms (`ticket_id` names that ticket)."),
        (status = 422, description = "`show_unknown`: no such show."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn register_ticket(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<RegisterTickets>,
    ApiJson(spec): ApiJson<TicketSpec>,
) -> Result<(StatusCode, Json<TicketView>)> {
    let reg = tickets::register(&state, &caller, spec).await?;
    let status = if reg.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(TicketView::registered(&reg, &state.base_url))))
}

/// Body of a batch registration; items are checked one by one so a bad item fails alone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// 1 to 10,000 registrations, each an object as `POST /api/v1/tickets` takes it (`TicketSpec`); an item
    /// that is not a valid registration fails alone, in its result.
    #[schema(value_type = Vec<Value>, min_items = 1, max_items = 10000)]
    tickets: Vec<Value>,
}

/// `POST /api/v1/tickets/batch`: up to 10,000 registrations, one durable write, a result per item.
#[utoipa::path(
    post,
    path = "/api/v1/tickets/batch",
    tag = "tickets",
    request_body = BatchBody,
    responses(
        (status = 200, description = "A result per item, in order: a ticket (201 created, 200 repeated) or an error.", body = BatchAnswer),
        (status = 400, description = "`invalid_request`: the body is not `{\"tickets\": [...]}` with 1 to 10,000 items."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn register_batch(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<RegisterTickets>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<Json<BatchAnswer>> {
    let batch = tickets::register_batch(&state, &caller, body.tickets).await?;
    Ok(Json(BatchAnswer::new(&batch, &state.base_url)))
}

/// `GET /api/v1/tickets/{id}`: status and usage.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{ticket_id}",
    tag = "tickets",
    params(("ticket_id" = TicketId, Path, description = "The ticket's id.")),
    responses(
        (status = 200, description = "The ticket with its `usage` and `sharing` signal.", body = TicketView),
        (status = 404, description = "`ticket_unknown`: no such ticket."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn ticket_status(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<ReadTickets>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketView>> {
    let report = tickets::status(&state, &caller, &id).await?;
    Ok(Json(TicketView::report(&report)))
}

/// `POST /api/v1/tickets/{id}/revoke`: refund or void; its sessions end at their next heartbeat (and at
/// once on the origin).
#[utoipa::path(
    post,
    path = "/api/v1/tickets/{ticket_id}/revoke",
    tag = "tickets",
    params(("ticket_id" = TicketId, Path, description = "The ticket's id.")),
    responses(
        (status = 200, description = "Revoked (or already revoked): the ticket.", body = TicketView),
        (status = 404, description = "`ticket_unknown`: no such ticket."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn revoke_ticket(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<RevokeTickets>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TicketView>> {
    let revoked = tickets::revoke(&state, &caller, &id).await?;
    Ok(Json(TicketView::new(&revoked)))
}

/// `DELETE /api/v1/tickets/{id}/personal-data`: erase the ticket's personal data (a buyer's erasure
/// request): its client addresses, countries and devices, its sessions' device labels. Status, terms,
/// times and counts stay; live sessions play on; audited as `ticket.erase_personal_data`. A second call
/// answers 200 with nothing erased.
#[utoipa::path(
    delete,
    path = "/api/v1/tickets/{ticket_id}/personal-data",
    tag = "tickets",
    params(("ticket_id" = TicketId, Path, description = "The ticket's id.")),
    responses(
        (status = 200, description = "Erased (or nothing left to erase): what was erased, and the ticket's status.", body = ErasureView),
        (status = 404, description = "`ticket_unknown`: no such ticket."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn erase_personal_data(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<ErasePersonalData>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ErasureView>> {
    let erasure = tickets::erase_personal_data(&state, &caller, &id).await?;
    Ok(Json(ErasureView::new(&erasure)))
}

/// Query of the ticket search.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A ticket id (`t_…`) or an external reference.
    #[param(min_length = 1, max_length = 200)]
    q: String,
}

/// `GET /api/v1/tickets?q=…`: search by id or external reference (at most 100).
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    params(SearchQuery),
    responses(
        (status = 200, description = "The ticket of that id, else those with that external reference (at most 100).", body = TicketList),
        (status = 429, description = "`rate_limited`: this caller searched more often than `rate_limits.searches` allows, or its API key made more requests than `rate_limits.api_key_requests` allows; retry after `Retry-After` seconds."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn search_tickets(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<ReadTickets>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<TicketList>> {
    let found = tickets::search(&state, &caller, &q.q).await?;
    Ok(Json(TicketList {
        tickets: found.iter().map(TicketView::new).collect(),
    }))
}
