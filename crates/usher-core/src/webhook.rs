//! Webhooks (issue 20): the endpoints a ticket site registers, the events Usher tells them of, and each
//! delivery of an event to an endpoint as the store's durable outbox keeps it.
//!
//! An event becomes one [`Delivery`] per subscribed endpoint when it happens; the store keeps it until it
//! is delivered or given up, so a crash or restart loses none. Nodes claim due deliveries for a while
//! ([`crate::store::Store::claim_deliveries`]): one node sends each, and a node lost mid-send leaves its
//! claim to lapse, after which another sends it again — delivery is at least once, each event carrying
//! its id for the receiver to drop a repeat.
//!
//! Each request is signed like the payment platforms sign theirs: `Usher-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's secret>` ([`signature`]); a receiver checks
//! the HMAC in constant time and that `t` is recent (5 minutes).

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::UnixMs;
use crate::ids::{DeliveryId, WebhookId};

/// Every event type, in the order the documentation lists them.
pub const EVENT_TYPES: &[&str] = &[
    "ticket.first_play",
    "ticket.sharing_suspected",
    "ticket.revoked",
    "session.refused",
    "show.live",
    "show.ended",
    "cdn.unhealthy",
    "cdn.recovered",
];

/// A registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// Its id.
    pub id: WebhookId,
    /// Where events are POSTed (`https://…`, or `http://` for receivers the admin vouches for).
    pub url: String,
    /// The event types it receives; empty: every type.
    pub events: Vec<String>,
    /// Whether events are queued for it (a disabled endpoint gets none, and its queued ones wait).
    pub enabled: bool,
    /// A note for humans.
    #[serde(default)]
    pub description: String,
    /// The signing secret (`whsec_` and 32 random bytes, base64url), shown once at creation and at each
    /// rotation. Kept in the store as the CDN signing keys are: protect the store like the secrets.
    pub secret: String,
    /// When it was registered.
    pub created_at: UnixMs,
    /// When it last changed.
    pub updated_at: UnixMs,
}

impl WebhookEndpoint {
    /// Whether it receives events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && (self.events.is_empty() || self.events.iter().any(|e| e == event_type))
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet: due at `next_attempt_at` (or claimed by a node until then).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up after retrying for `webhooks.give_up_after_h`; an admin may send it again.
    Failed,
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Its id.
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint: WebhookId,
    /// The event's id (`evt_…`): the same in every delivery of the event, and in every retry.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The body sent: the event as JSON.
    pub payload: String,
    /// When the event happened.
    pub created_at: UnixMs,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending), or was made last.
    pub next_attempt_at: UnixMs,
    /// The endpoint's last status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was delivered.
    pub delivered_at: Option<UnixMs>,
}

/// The `Usher-Signature` header of `body` sent at `t` (unix seconds) under `secret`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `attempt + 1` (after `attempt` failures): `base_s` doubled per failure, at
/// most six hours, times `jitter` (0.8–1.2, drawn by the caller) so failed endpoints are not retried in
/// step.
pub fn backoff_ms(attempt: u32, base_s: u32, jitter: f64) -> i64 {
    let exp = 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let s = (f64::from(base_s) * exp).min(6.0 * 3600.0);
    (s * 1000.0 * jitter.clamp(0.5, 1.5)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // the signed text is "<t>.<body>" (the README gives a receiver's check in Python and JavaScript)
        let sig = signature("whsec_test", 1_700_000_000, br#"{"id":"evt_1"}"#);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_test").unwrap();
        mac.update(br#"1700000000.{"id":"evt_1"}"#);
        assert_eq!(
            sig,
            format!(
                "t=1700000000,v1={}",
                hex::encode(mac.finalize().into_bytes())
            )
        );
    }

    #[test]
    fn backoff_doubles_to_a_cap_with_jitter() {
        assert_eq!(backoff_ms(1, 10, 1.0), 10_000);
        assert_eq!(backoff_ms(2, 10, 1.0), 20_000);
        assert_eq!(backoff_ms(5, 10, 1.0), 160_000);
        assert_eq!(backoff_ms(40, 10, 1.0), 6 * 3600 * 1000);
        assert_eq!(backoff_ms(1, 10, 1.2), 12_000);
    }

    #[test]
    fn an_endpoint_wants_its_events_while_enabled() {
        let mut e = WebhookEndpoint {
            id: WebhookId::generate(),
            url: "https://tickets.example/hooks".into(),
            events: vec!["ticket.revoked".into()],
            enabled: true,
            description: String::new(),
            secret: "whsec_x".into(),
            created_at: UnixMs(0),
            updated_at: UnixMs(0),
        };
        assert!(e.wants("ticket.revoked"));
        assert!(!e.wants("cdn.unhealthy"));
        e.events.clear();
        assert!(e.wants("cdn.unhealthy"));
        e.enabled = false;
        assert!(!e.wants("ticket.revoked"));
    }
}
