//! `[webhooks]`: how events reach the ticket site's endpoints.

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// How deliveries are sent (the endpoints themselves are data: `POST /api/v1/webhooks`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Whether this node sends deliveries (every node may; each delivery is claimed by one). Events are
    /// queued whatever this says.
    pub send: bool,
    /// Milliseconds between two looks at the queue.
    pub poll_ms: u64,
    /// Longest an endpoint may take to answer, in milliseconds.
    pub timeout_ms: u64,
    /// The wait before the first retry, in seconds; it doubles per failure up to six hours.
    pub retry_base_s: u32,
    /// Hours after the event when a delivery that never succeeded is given up (`failed`).
    pub give_up_after_h: u32,
    /// Whether endpoints may be loopback, private or link-local addresses (receivers on the local
    /// network, the tests'); off, such a delivery fails without a request.
    pub allow_private_targets: bool,
    /// Seconds over which a node sums refused admits into one `session.refused` event per show.
    pub refusals_every_s: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            send: true,
            poll_ms: 1_000,
            timeout_ms: 10_000,
            retry_base_s: 10,
            give_up_after_h: 72,
            allow_private_targets: false,
            refusals_every_s: 60,
        }
    }
}

impl WebhookSettings {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=3_600).contains(&self.refusals_every_s) {
            return Err(invalid("webhooks.refusals_every_s", "must be 1 to 3600"));
        }
        if !(50..=60_000).contains(&self.poll_ms) {
            return Err(invalid("webhooks.poll_ms", "must be 50 to 60000"));
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            return Err(invalid("webhooks.timeout_ms", "must be 100 to 60000"));
        }
        if !(1..=3600).contains(&self.retry_base_s) {
            return Err(invalid("webhooks.retry_base_s", "must be 1 to 3600"));
        }
        if !(1..=720).contains(&self.give_up_after_h) {
            return Err(invalid("webhooks.give_up_after_h", "must be 1 to 720"));
        }
        Ok(())
    }
}
