//! Webhook endpoints (never with their secret but in the answers that make one) and deliveries.

use serde::Serialize;
use usher_core::clock::UnixMs;
use usher_core::ids::{DeliveryId, WebhookId};
use usher_core::webhook::{Delivery, DeliveryState, WebhookEndpoint};
use utoipa::ToSchema;

use super::rfc3339;

fn at(t: UnixMs) -> Option<String> {
    rfc3339(t.to_datetime())
}

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: WebhookId,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives (empty: every type).
    pub events: Vec<String>,
    /// Whether events are queued for it.
    pub enabled: bool,
    /// A note for humans.
    pub description: String,
    /// When it was registered.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// When it last changed.
    #[schema(format = DateTime, required = true)]
    pub updated_at: Option<String>,
    /// The signing secret: in the answer that made it (creation, rotation) only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<&WebhookEndpoint> for WebhookView {
    fn from(e: &WebhookEndpoint) -> Self {
        Self {
            id: e.id.clone(),
            url: e.url.clone(),
            events: e.events.clone(),
            enabled: e.enabled,
            description: e.description.clone(),
            created_at: at(e.created_at),
            updated_at: at(e.updated_at),
            secret: None,
        }
    }
}

impl WebhookView {
    /// An endpoint with its new secret, shown this once.
    pub fn with_secret(e: &WebhookEndpoint) -> Self {
        Self {
            secret: Some(e.secret.clone()),
            ..Self::from(e)
        }
    }
}

/// Every webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// The endpoints.
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Its id (`Usher-Delivery-Id`).
    pub id: DeliveryId,
    /// The event's id (`Usher-Event-Id`, the body's `id`): the same in every retry.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (given up).
    #[schema(value_type = String)]
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the event happened.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// When the next attempt is due (pending), or when the last was made.
    #[schema(format = DateTime, required = true)]
    pub next_attempt_at: Option<String>,
    /// When it was delivered.
    #[schema(format = DateTime, required = true)]
    pub delivered_at: Option<String>,
    /// The endpoint's last status, if it answered.
    #[schema(required = true)]
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// The body sent (the event as JSON text).
    pub payload: String,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            state: d.state,
            attempts: d.attempts,
            created_at: at(d.created_at),
            next_attempt_at: at(d.next_attempt_at),
            delivered_at: d.delivered_at.and_then(at),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            payload: d.payload.clone(),
        }
    }
}

/// An endpoint's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryView>,
}
