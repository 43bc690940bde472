//! Webhooks (issue 20): the endpoints an admin registers, the events the other services [`emit`], and
//! the delivery log with re-send. Sending is `webhook_sender.rs`'s (a node part); the domain rules and
//! the signature are `usher-core`'s `webhook` module.

use serde::Deserialize;
use serde_json::{Value, json};
use usher_core::admin::Permission;
use usher_core::clock::UnixMs;
use usher_core::ids::{DeliveryId, WebhookId, random_b64, random_hex};
use usher_core::webhook::{Delivery, DeliveryState, EVENT_TYPES, WebhookEndpoint};

use crate::service::audit;
use crate::service::{Caller, Error, Record, Result};
use crate::state::AppState;

/// Most endpoints (each event is one delivery per endpoint).
pub const MAX_ENDPOINTS: usize = 20;

/// Body of `POST /api/v1/webhooks`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where events are POSTed: `https://…` (or `http://`), no credentials or fragment, at most 2,048
    /// characters.
    pub url: String,
    /// The event types it receives (see `EVENT_TYPES` in the README); empty or absent: every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// A note for humans (at most 200 characters).
    #[serde(default)]
    pub description: String,
}

/// Body of `PATCH /api/v1/webhooks/{id}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// A new URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New event types (empty: every type).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Whether events are queued for it.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A new note.
    #[serde(default)]
    pub description: Option<String>,
}

fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidRequest(format!("url: {why}")));
    if url.len() > 2048 {
        return bad("at most 2048 characters");
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("not an absolute URL");
    };
    if !matches!(parsed.scheme(), "https" | "http") {
        return bad("must be https:// or http://");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("no host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return bad("no credentials or fragment");
    }
    Ok(())
}

fn check_events(events: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "events: `{}` is not one of {}",
                e.chars().take(64).collect::<String>(),
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.contains(e) {
            out.push(e.clone());
        }
    }
    Ok(out)
}

fn check_description(d: &str) -> Result<()> {
    usher_core::validation::check_text("description", d, 0, 200)
        .map_err(|e| Error::InvalidRequest(e.to_string()))
}

fn new_secret() -> String {
    format!("whsec_{}", random_b64(32))
}

fn lookup(id: &str) -> Result<WebhookId> {
    WebhookId::parse(id).map_err(|_| Error::NotFound(Record::Webhook))
}

/// Registers an endpoint; returns it with its signing secret (shown once).
///
/// # Errors
/// `invalid_request`; `forbidden`.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    body: NewEndpoint,
) -> Result<WebhookEndpoint> {
    caller.require(Permission::Manage)?;
    check_url(&body.url)?;
    let events = check_events(&body.events)?;
    check_description(&body.description)?;
    if state.store.webhooks().await?.len() >= MAX_ENDPOINTS {
        return Err(Error::InvalidRequest(format!(
            "at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let now = state.store.now();
    let endpoint = WebhookEndpoint {
        id: WebhookId::generate(),
        url: body.url,
        events,
        enabled: true,
        description: body.description,
        secret: new_secret(),
        created_at: now,
        updated_at: now,
    };
    state.store.put_webhook(endpoint.clone()).await?;
    audit::record(
        state,
        caller,
        "webhook.create",
        &format!("webhook:{}", endpoint.id),
        &endpoint.url,
    )
    .await;
    Ok(endpoint)
}

/// Every endpoint.
///
/// # Errors
/// `forbidden`.
pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<WebhookEndpoint>> {
    caller.require(Permission::Read)?;
    Ok(state.store.webhooks().await?)
}

/// One endpoint.
///
/// # Errors
/// `webhook_unknown`; `forbidden`.
pub async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookEndpoint> {
    caller.require(Permission::Read)?;
    state
        .store
        .webhook(&lookup(id)?)
        .await?
        .ok_or(Error::NotFound(Record::Webhook))
}

/// Changes an endpoint.
///
/// # Errors
/// `webhook_unknown`, `invalid_request`; `forbidden`.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    id: &str,
    patch: EndpointPatch,
) -> Result<WebhookEndpoint> {
    caller.require(Permission::Manage)?;
    let mut endpoint = state
        .store
        .webhook(&lookup(id)?)
        .await?
        .ok_or(Error::NotFound(Record::Webhook))?;
    if let Some(url) = patch.url {
        check_url(&url)?;
        endpoint.url = url;
    }
    if let Some(events) = patch.events {
        endpoint.events = check_events(&events)?;
    }
    if let Some(d) = patch.description {
        check_description(&d)?;
        endpoint.description = d;
    }
    if let Some(e) = patch.enabled {
        endpoint.enabled = e;
    }
    endpoint.updated_at = state.store.now();
    state.store.put_webhook(endpoint.clone()).await?;
    audit::record(
        state,
        caller,
        "webhook.patch",
        &format!("webhook:{}", endpoint.id),
        &format!("enabled={} url={}", endpoint.enabled, endpoint.url),
    )
    .await;
    Ok(endpoint)
}

/// Gives an endpoint a new signing secret (answered once); the old one stops at once.
///
/// # Errors
/// `webhook_unknown`; `forbidden`.
pub async fn rotate_secret(state: &AppState, caller: &Caller, id: &str) -> Result<WebhookEndpoint> {
    caller.require(Permission::Manage)?;
    let mut endpoint = state
        .store
        .webhook(&lookup(id)?)
        .await?
        .ok_or(Error::NotFound(Record::Webhook))?;
    endpoint.secret = new_secret();
    endpoint.updated_at = state.store.now();
    state.store.put_webhook(endpoint.clone()).await?;
    audit::record(
        state,
        caller,
        "webhook.rotate_secret",
        &format!("webhook:{}", endpoint.id),
        "",
    )
    .await;
    Ok(endpoint)
}

/// Deletes an endpoint (its queued deliveries are given up when next claimed).
///
/// # Errors
/// `webhook_unknown`; `forbidden`.
pub async fn remove(state: &AppState, caller: &Caller, id: &str) -> Result<()> {
    caller.require(Permission::Manage)?;
    let id = lookup(id)?;
    if !state.store.delete_webhook(&id).await? {
        return Err(Error::NotFound(Record::Webhook));
    }
    audit::record(
        state,
        caller,
        "webhook.delete",
        &format!("webhook:{id}"),
        "",
    )
    .await;
    Ok(())
}

/// An endpoint's deliveries, newest first (at most `limit`, 1–200).
///
/// # Errors
/// `webhook_unknown`, `invalid_request`; `forbidden`.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    id: &str,
    limit: usize,
) -> Result<Vec<Delivery>> {
    caller.require(Permission::Read)?;
    if !(1..=200).contains(&limit) {
        return Err(Error::InvalidRequest("limit: must be 1 to 200".into()));
    }
    let id = lookup(id)?;
    if state.store.webhook(&id).await?.is_none() {
        return Err(Error::NotFound(Record::Webhook));
    }
    Ok(state.store.deliveries(&id, limit).await?)
}

/// Sends a delivery again (due now; its attempts go on counting), whatever it came to.
///
/// # Errors
/// `webhook_unknown`, `delivery_unknown`; `forbidden`.
pub async fn resend(
    state: &AppState,
    caller: &Caller,
    id: &str,
    delivery: &str,
) -> Result<Delivery> {
    caller.require(Permission::Manage)?;
    let id = lookup(id)?;
    if state.store.webhook(&id).await?.is_none() {
        return Err(Error::NotFound(Record::Webhook));
    }
    let did = DeliveryId::parse(delivery).map_err(|_| Error::NotFound(Record::Delivery))?;
    let mut d = state
        .store
        .delivery(&did)
        .await?
        .filter(|d| d.endpoint == id)
        .ok_or(Error::NotFound(Record::Delivery))?;
    d.state = DeliveryState::Pending;
    d.next_attempt_at = state.store.now();
    d.delivered_at = None;
    state.store.save_delivery(d.clone()).await?;
    audit::record(
        state,
        caller,
        "webhook.resend",
        &format!("webhook:{id}"),
        &format!("delivery={did} event={}", d.event_id),
    )
    .await;
    Ok(d)
}

/// Queues `event_type` with `data` for every endpoint that wants it: one delivery per endpoint, in the
/// store before this returns (the outbox). An event no endpoint wants costs one read of the endpoints.
/// A store that fails loses the event (logged and counted): the change it tells of is already made.
pub async fn emit(state: &AppState, event_type: &'static str, data: Value) {
    if let Err(e) = try_emit(state, event_type, data).await {
        metrics::counter!("usher_webhook_events_lost_total", "type" => event_type).increment(1);
        tracing::error!(error = %e, event.r#type = event_type, "a webhook event could not be queued");
    }
}

async fn try_emit(state: &AppState, event_type: &'static str, data: Value) -> Result<()> {
    let endpoints: Vec<WebhookEndpoint> = state
        .store
        .webhooks()
        .await?
        .into_iter()
        .filter(|e| e.wants(event_type))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let now = state.store.now();
    let event_id = format!("evt_{}", random_hex(12));
    let payload = json!({
        "id": event_id,
        "type": event_type,
        "created_at": now.to_datetime().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": data,
    })
    .to_string();
    let deliveries = endpoints
        .iter()
        .map(|e| Delivery {
            id: DeliveryId::generate(),
            endpoint: e.id.clone(),
            event_id: event_id.clone(),
            event_type: event_type.to_owned(),
            payload: payload.clone(),
            created_at: now,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            delivered_at: None,
        })
        .collect();
    state.store.enqueue_deliveries(deliveries).await?;
    metrics::counter!("usher_webhook_events_total", "type" => event_type).increment(1);
    Ok(())
}

/// How long a node stays quiet about a ticket it told of sharing.
const SHARING_QUIET_MS: i64 = 10 * 60 * 1000;
/// Most tickets a node remembers telling of (past it, it forgets them all: a repeat event, no growth).
const SHARING_REMEMBERED: usize = 10_000;

/// `ticket.sharing_suspected` for `ticket` (`why`: `session_cloned`, a copy of a session's credentials
/// renewed): at most once per ticket every ten minutes per node, however often the copy retries.
pub async fn sharing_suspected(
    state: &AppState,
    ticket: &usher_core::ids::TicketId,
    show: &usher_core::ids::ShowId,
    why: &'static str,
) {
    static TOLD: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<usher_core::ids::TicketId, i64>>,
    > = std::sync::OnceLock::new();
    let now = state.store.now().0;
    {
        let mut told = TOLD
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if told
            .get(ticket)
            .is_some_and(|at| now - at < SHARING_QUIET_MS)
        {
            return;
        }
        if told.len() >= SHARING_REMEMBERED {
            told.clear();
        }
        told.insert(ticket.clone(), now);
    }
    emit(
        state,
        "ticket.sharing_suspected",
        json!({"ticket_id": ticket, "show_id": show, "reason": why}),
    )
    .await;
}

/// When a delivery that failed `attempts` times is due again, or `None` when it is given up.
pub fn next_attempt(state: &AppState, d: &Delivery, now: UnixMs, jitter: f64) -> Option<UnixMs> {
    let cfg = &state.config.webhooks;
    let give_up_at = d.created_at.0 + i64::from(cfg.give_up_after_h) * 3_600_000;
    let next = now.0 + usher_core::webhook::backoff_ms(d.attempts, cfg.retry_base_s, jitter);
    (next <= give_up_at).then_some(UnixMs(next))
}
