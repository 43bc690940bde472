//! The ticket site's API: register (one or a batch), read status and usage, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::ids::{TicketId, TicketToken};
use usher_core::store::{NewTicket, RegisterOutcome, TicketActivity};
use usher_core::ticket::{Ticket, TicketSpec, TicketStatus};

use usher_core::admin::Permission;

use crate::audit;
use crate::auth::{Authorized, Caller, ReadTickets, RegisterTickets, RevokeTickets};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::openapi::schemas::{BatchAnswer, TicketView};
use crate::state::AppState;

/// Most tickets in one batch.
pub const MAX_BATCH: usize = 10_000;

fn rfc3339(t: Option<time::OffsetDateTime>) -> Value {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(Value::Null, Value::String)
}

/// The JSON view of a ticket; `token` only in registration answers.
pub fn ticket_view(state: &AppState, t: &Ticket, token: Option<&TicketToken>) -> Value {
    let mut v = json!({
        "id": t.id,
        "show_id": t.terms.show_id,
        "status": t.status,
        "valid_from": rfc3339(t.terms.valid_from),
        "valid_until": rfc3339(t.terms.valid_until),
        "max_devices": t.terms.max_devices,
        "external_ref": t.terms.external_ref,
        "created_at": rfc3339(Some(t.created_at)),
        "revoked_at": rfc3339(t.revoked_at),
    });
    if let Some(token) = token {
        v["token"] = json!(token.expose());
        v["watch_url"] = json!(format!("{}/watch/{}", state.base_url, token.expose()));
    }
    v
}

/// The JSON view of a ticket's usage.
pub fn activity_view(a: &TicketActivity) -> Value {
    let u = &a.usage;
    json!({
        "first_play_at": u.first_play_at.map(|t| t.to_rfc3339()),
        "last_seen_at": u.last_seen_at.map(|t| t.to_rfc3339()),
        "sessions": u.sessions,
        "devices": u.devices.len(),
        "active_sessions": a.live.len(),
        "device_history": u.devices.iter().map(|d| json!({
            "label": d.label,
            "first_seen_at": d.first_seen.to_rfc3339(),
            "last_seen_at": d.last_seen.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "countries": u.countries.iter().map(|c| json!({
            "country": c.country,
            "first_seen_at": c.first_seen.to_rfc3339(),
            "last_seen_at": c.last_seen.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "addresses": u.addresses.iter().map(|a| json!({
            "address": a.address,
            "first_seen_at": a.first_seen.to_rfc3339(),
            "last_seen_at": a.last_seen.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "live_sessions": a.live.iter().map(|s| json!({
            "session_id": s.session_id,
            "device_label": s.device_label,
            "started_at": s.created_at.to_rfc3339(),
            "last_heartbeat_at": s.renewed_at.to_rfc3339(),
            "expires_at": s.expires_at.to_rfc3339(),
        })).collect::<Vec<_>>(),
    })
}

/// A registration checked against everything but the store's token index.
struct Checked {
    new: NewTicket,
    token: TicketToken,
}

async fn check(state: &AppState, spec: TicketSpec) -> ApiResult<Checked> {
    let terms = spec
        .terms()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let token = match &spec.token {
        Some(t) => {
            TicketToken::parse(t).map_err(|e| ApiError::InvalidRequest(format!("token: {e}")))?
        }
        None => TicketToken::generate(),
    };
    if state.store.show(&terms.show_id).await?.is_none() {
        return Err(ApiError::UnknownShow(terms.show_id.to_string()));
    }
    let ticket = Ticket {
        id: TicketId::generate(),
        token_hash: state.hasher.ticket_token(&token),
        terms,
        status: TicketStatus::Active,
        created_at: state.store.now().to_datetime(),
        revoked_at: None,
    };
    Ok(Checked {
        new: NewTicket { ticket },
        token,
    })
}

fn outcome_response(
    state: &AppState,
    outcome: RegisterOutcome,
    token: &TicketToken,
) -> ApiResult<(StatusCode, Value)> {
    match outcome {
        RegisterOutcome::Created(t) => {
            Ok((StatusCode::CREATED, ticket_view(state, &t, Some(token))))
        }
        RegisterOutcome::Existing(t) => Ok((StatusCode::OK, ticket_view(state, &t, Some(token)))),
        RegisterOutcome::Conflict(id) => Err(ApiError::TokenConflict {
            ticket_id: id.to_string(),
        }),
    }
}

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
) -> ApiResult<Response> {
    let checked = check(&state, spec).await?;
    let outcome = state
        .store
        .register_tickets(vec![checked.new])
        .await?
        .into_iter()
        .next();
    let outcome = outcome.ok_or_else(|| ApiError::Internal("store answered no outcome".into()))?;
    let (status, body) = outcome_response(&state, outcome, &checked.token)?;
    metrics::counter!("usher_tickets_registered_total", "outcome" => if status == StatusCode::CREATED { "created" } else { "existing" }).increment(1);
    if status == StatusCode::CREATED {
        let target = format!("ticket:{}", body["id"].as_str().unwrap_or_default());
        audit::record(&state, &caller, "ticket.register", &target, "").await;
    }
    Ok((status, Json(body)).into_response())
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

fn item_error(index: usize, e: &ApiError) -> Value {
    let res = match e {
        ApiError::InvalidRequest(m) => json!({"code": e.code(), "detail": m}),
        ApiError::UnknownShow(id) => json!({"code": e.code(), "detail": format!("no show `{id}`")}),
        ApiError::TokenConflict { ticket_id } => json!({"code": e.code(), "ticket_id": ticket_id}),
        other => json!({"code": other.code()}),
    };
    json!({"index": index, "status": e.status().as_u16(), "error": res})
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
) -> ApiResult<Json<Value>> {
    if body.tickets.is_empty() || body.tickets.len() > MAX_BATCH {
        return Err(ApiError::InvalidRequest(format!(
            "tickets: must hold 1 to {MAX_BATCH} items"
        )));
    }
    let mut results: Vec<Option<Value>> = vec![None; body.tickets.len()];
    let mut pending = Vec::new();
    for (i, item) in body.tickets.into_iter().enumerate() {
        // serde would also fill a registration from an array of its fields in order
        let spec = if item.is_object() {
            serde_path_to_error::deserialize::<_, TicketSpec>(item).map_err(|e| {
                ApiError::InvalidRequest(format!("tickets[{i}].{}: {}", e.path(), e.inner()))
            })
        } else {
            Err(ApiError::InvalidRequest(format!(
                "tickets[{i}]: must be an object"
            )))
        };
        match spec {
            Ok(spec) => match check(&state, spec).await {
                Ok(c) => pending.push((i, c)),
                Err(e @ (ApiError::InvalidRequest(_) | ApiError::UnknownShow(_))) => {
                    results[i] = Some(item_error(i, &e))
                }
                Err(e) => return Err(e),
            },
            Err(e) => results[i] = Some(item_error(i, &e)),
        }
    }
    let (indices, checked): (Vec<usize>, Vec<Checked>) = pending.into_iter().unzip();
    let tokens: Vec<TicketToken> = checked.iter().map(|c| c.token.clone()).collect();
    let outcomes = state
        .store
        .register_tickets(checked.into_iter().map(|c| c.new).collect())
        .await?;
    let (mut created, mut existing) = (0u64, 0u64);
    for ((i, outcome), token) in indices.into_iter().zip(outcomes).zip(tokens) {
        results[i] = Some(match outcome_response(&state, outcome, &token) {
            Ok((status, ticket)) => {
                if status == StatusCode::CREATED {
                    created += 1;
                } else {
                    existing += 1;
                }
                json!({"index": i, "status": status.as_u16(), "ticket": ticket})
            }
            Err(e) => item_error(i, &e),
        });
    }
    metrics::counter!("usher_tickets_registered_total", "outcome" => "created").increment(created);
    metrics::counter!("usher_tickets_registered_total", "outcome" => "existing")
        .increment(existing);
    let results: Vec<Value> = results
        .into_iter()
        .map(|r| r.unwrap_or(Value::Null))
        .collect();
    let failed = results.len() as u64 - created - existing;
    if created > 0 {
        audit::record(
            &state,
            &caller,
            "ticket.register_batch",
            "",
            &format!("created={created} existing={existing} failed={failed}"),
        )
        .await;
    }
    Ok(Json(
        json!({"created": created, "existing": existing, "failed": failed, "results": results}),
    ))
}

/// Finds a ticket by id.
///
/// # Errors
/// `ticket_unknown`.
pub async fn find(state: &AppState, id: &str) -> ApiResult<Ticket> {
    let id = TicketId::parse(id).map_err(|_| ApiError::NotFound("ticket_unknown"))?;
    state
        .store
        .ticket(&id)
        .await?
        .ok_or(ApiError::NotFound("ticket_unknown"))
}

/// `GET /api/v1/tickets/{id}`: status and usage.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{ticket_id}",
    tag = "tickets",
    params(("ticket_id" = TicketId, Path, description = "The ticket's id.")),
    responses(
        (status = 200, description = "The ticket with its `usage`.", body = TicketView),
        (status = 404, description = "`ticket_unknown`: no such ticket."),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn ticket_status(
    State(state): State<AppState>,
    _caller: Authorized<ReadTickets>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let ticket = find(&state, &id).await?;
    let activity = state.store.ticket_activity(&ticket.id).await?;
    let mut v = ticket_view(&state, &ticket, None);
    v["usage"] = activity_view(&activity);
    v["sharing"] = sharing_signal(&activity);
    Ok(Json(v))
}

/// How many devices and countries took turns on a ticket, and whether that looks like sharing: more
/// devices than the ticket allows at once, or more than one country.
pub fn sharing_signal(a: &TicketActivity) -> Value {
    let devices = a.usage.devices.len();
    let countries = a.usage.countries.len();
    let level = if devices > 3 || countries > 1 {
        "high"
    } else if devices > 1 {
        "some"
    } else {
        "none"
    };
    json!({"devices": devices, "countries": countries, "sessions": a.usage.sessions, "level": level})
}

/// Revokes a ticket; its sessions end at their next heartbeat (and at once on the origin).
///
/// # Errors
/// `ticket_unknown`; `forbidden`.
pub async fn revoke(state: &AppState, caller: &Caller, id: &str) -> ApiResult<Ticket> {
    caller.require(Permission::RevokeTickets)?;
    let ticket = find(state, id).await?;
    let revoked = state
        .store
        .revoke_ticket(&ticket.id)
        .await?
        .ok_or(ApiError::NotFound("ticket_unknown"))?;
    tracing::info!(ticket.id = %revoked.id, "ticket revoked");
    audit::record(
        state,
        caller,
        "ticket.revoke",
        &format!("ticket:{}", revoked.id),
        "",
    )
    .await;
    Ok(revoked)
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
) -> ApiResult<Json<Value>> {
    let revoked = revoke(&state, &caller, &id).await?;
    Ok(Json(ticket_view(&state, &revoked, None)))
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

/// Tickets matching `q`: the ticket of that id, else those with that exact external reference.
///
/// # Errors
/// `invalid_request` for an empty or overlong query; `forbidden`.
pub async fn search(state: &AppState, caller: &Caller, q: &str) -> ApiResult<Vec<Ticket>> {
    caller.require(Permission::ReadTickets)?;
    let q = q.trim();
    if q.is_empty() || q.chars().count() > 200 {
        return Err(ApiError::InvalidRequest(
            "q: a ticket id or an external reference of 1 to 200 characters".into(),
        ));
    }
    if let Ok(id) = TicketId::parse(q)
        && let Some(t) = state.store.ticket(&id).await?
    {
        return Ok(vec![t]);
    }
    Ok(state.store.tickets_by_external_ref(q, 100).await?)
}

/// `GET /api/v1/tickets?q=…`: search by id or external reference (at most 100).
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    params(SearchQuery),
    responses(
        (status = 200, description = "`{tickets: [...]}`: the ticket of that id, else those with that external reference (at most 100).", body = crate::openapi::schemas::TicketList),
    ),
    security(("bearer" = ["tickets"])),
)]
pub async fn search_tickets(
    State(state): State<AppState>,
    Authorized(caller, _): Authorized<ReadTickets>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let found = search(&state, &caller, &q.q).await?;
    Ok(Json(json!({
        "tickets": found.iter().map(|t| ticket_view(&state, t, None)).collect::<Vec<_>>()
    })))
}
