//! Sends the webhook deliveries the store's outbox holds (`service::webhooks` queues them): every
//! `webhooks.poll_ms` this node claims the due ones for a minute, POSTs each signed
//! (`usher_core::webhook::signature`) with its event's id, and records the outcome — delivered on a 2xx,
//! else due again after an exponential backoff with jitter, or given up once `webhooks.give_up_after_h`
//! have passed since the event. A node lost mid-send leaves its claims to lapse; another node sends them
//! again (at least once; the event id tells a repeat).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use tokio_util::sync::CancellationToken;
use usher_core::clock::UnixMs;
use usher_core::webhook::{Delivery, DeliveryState, signature};

use crate::service::webhooks::next_attempt;
use crate::state::AppState;

/// Most deliveries one look claims.
const BATCH: usize = 32;
/// How long a claim keeps other nodes off a delivery (longer than any attempt takes).
const CLAIM_MS: i64 = 60_000;
/// Most of an endpoint's answer kept as the error of a failed attempt.
const ERROR_CHARS: usize = 200;

fn client(state: &AppState) -> reqwest::Result<reqwest::Client> {
    let cfg = &state.config.webhooks;
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("usher-webhooks/", env!("CARGO_PKG_VERSION")));
    if !cfg.allow_private_targets {
        builder = builder.dns_resolver(Arc::new(crate::cdn_probe::PublicOnly));
    }
    builder.build()
}

/// Sends deliveries until `cancel` fires (does nothing when `webhooks.send` is off).
pub async fn run(state: AppState, cancel: CancellationToken) {
    if !state.config.webhooks.send {
        return;
    }
    let client = match client(&state) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook deliveries disabled: no HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(state.config.webhooks.poll_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => send_due(&state, &client).await,
        }
    }
}

async fn send_due(state: &AppState, client: &reqwest::Client) {
    let until = UnixMs(state.store.now().0 + CLAIM_MS);
    let claimed = match state.store.claim_deliveries(until, BATCH).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "webhook deliveries not claimed");
            return;
        }
    };
    let mut sends = tokio::task::JoinSet::new();
    for d in claimed {
        let (state, client) = (state.clone(), client.clone());
        sends.spawn(async move { attempt(&state, &client, d).await });
    }
    while sends.join_next().await.is_some() {}
}

/// One attempt at `d`, recorded in the store.
async fn attempt(state: &AppState, client: &reqwest::Client, mut d: Delivery) {
    let endpoint = match state.store.webhook(&d.endpoint).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "webhook endpoint not read; the claim lapses");
            return;
        }
    };
    let Some(endpoint) = endpoint else {
        d.state = DeliveryState::Failed;
        d.last_error = Some("the endpoint was deleted".into());
        save(state, d, "dropped").await;
        return;
    };
    let now = state.store.now();
    if !endpoint.enabled {
        // waits for the endpoint to be enabled again (still given up in time)
        d.next_attempt_at = UnixMs(now.0 + 60_000);
        save(state, d, "waiting").await;
        return;
    }
    let t = now.0.div_euclid(1000);
    let outcome = client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header(
            "usher-signature",
            signature(&endpoint.secret, t, d.payload.as_bytes()),
        )
        .header("usher-event-id", &d.event_id)
        .header("usher-event-type", &d.event_type)
        .header("usher-delivery-id", d.id.as_str())
        .body(d.payload.clone())
        .send()
        .await;
    d.attempts += 1;
    let now = state.store.now();
    match outcome {
        Ok(res) if res.status().is_success() => {
            d.state = DeliveryState::Delivered;
            d.last_status = Some(res.status().as_u16());
            d.last_error = None;
            d.delivered_at = Some(now);
            d.next_attempt_at = now;
            save(state, d, "delivered").await;
        }
        failed => {
            let error = match failed {
                Ok(res) => {
                    d.last_status = Some(res.status().as_u16());
                    let status = res.status();
                    let body = res.text().await.unwrap_or_default();
                    format!(
                        "answered {status}: {}",
                        body.chars().take(ERROR_CHARS).collect::<String>()
                    )
                }
                Err(e) => {
                    d.last_status = None;
                    // without the URL: it may carry a token of the receiver's
                    e.without_url().to_string()
                }
            };
            d.last_error = Some(error);
            let jitter = rand::thread_rng().gen_range(0.8..1.2);
            match next_attempt(state, &d, now, jitter) {
                Some(at) => {
                    d.next_attempt_at = at;
                    save(state, d, "retry").await;
                }
                None => {
                    d.state = DeliveryState::Failed;
                    d.next_attempt_at = now;
                    save(state, d, "failed").await;
                }
            }
        }
    }
}

async fn save(state: &AppState, d: Delivery, outcome: &'static str) {
    metrics::counter!("usher_webhook_deliveries_total", "outcome" => outcome).increment(1);
    if let Err(e) = state.store.save_delivery(d).await {
        tracing::warn!(error = %e, "webhook delivery outcome not recorded; the claim lapses and it is sent again");
    }
}
