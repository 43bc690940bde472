//! Safe retries (issue 20): a POST of the ticket or admin API sent with an `Idempotency-Key` runs once per
//! caller and key; a retry with the same key and the same request gets the first answer again (marked
//! `Idempotent-Replayed: true`), the same key with another request is refused (`idempotency_key_reused`,
//! 422), and while the first request runs its twins wait for its answer (up to [`WAIT`], then
//! `idempotency_in_progress`, 409).
//!
//! The record lives in the store under a keyed hash of the caller (its API key id or console user) and
//! the key, on both
//! backends, for [`KEEP_MS`] (24 h). An answer may carry a ticket token, so it is sealed with AES-256-GCM
//! under a key derived from `token_key` (HKDF-SHA256, a label of its own), the record's store key bound
//! as associated data: the store never holds an answer in clear. What a retry may cure is not kept — a
//! 5xx, a 429, an authentication refusal — so the retry runs anew.

use std::time::Duration;

use sha2::Digest as _;
use usher_core::clock::UnixMs;
use usher_core::store::{IdempotencyClaim, IdempotentRequest};

use crate::service::{Error, Result};
use crate::state::AppState;

/// An answer as it is replayed: status, the headers that describe it, the body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Content-Type`, `Location` and the like (not cookies: a replay logs nobody in).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// How long an answer is replayed.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;
/// How long a claim holds a key whose request never answers (its node was lost mid-request).
pub const CLAIM_MS: i64 = 60_000;
/// How long a twin of a running request waits for its answer.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a waiting twin looks.
const POLL: Duration = Duration::from_millis(20);
/// The longest `Idempotency-Key` taken (the IETF draft and the payment platforms use up to 255).
pub const MAX_KEY_LEN: usize = 255;
/// The largest answer kept; a larger one is answered but not remembered (its retry runs anew).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Checks an `Idempotency-Key`: 1–255 visible ASCII characters.
///
/// # Errors
/// `invalid_request`.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidRequest(format!(
            "Idempotency-Key: 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(())
}

/// SHA-256 of what makes two requests the same one, hex.
pub fn fingerprint(method: &str, target: &str, content_type: &str, body: &[u8]) -> String {
    let mut h = sha2::Sha256::new();
    for part in [
        method.as_bytes(),
        target.as_bytes(),
        content_type.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(body);
    hex::encode(h.finalize())
}

/// A claimed key: the request runs, then [`finish`] keeps its answer.
#[derive(Debug)]
pub struct Claim {
    store_key: String,
    fingerprint: String,
}

/// What a POST with an `Idempotency-Key` does.
#[derive(Debug)]
pub enum Begin {
    /// Run the request, then [`finish`] with its answer.
    Run(Claim),
    /// Answer this again: the first request with this key and body answered it.
    Replay(Answer),
}

/// Claims `key` for the request of `caller` (`key:<id>` or `user:<name>`, authenticated) with
/// `fingerprint`, or finds the first request's answer
/// (waiting up to [`WAIT`] while it runs).
///
/// # Errors
/// `idempotency_key_reused` (another request used the key), `idempotency_in_progress` (the first one
/// has not answered within [`WAIT`]), `store_unavailable`.
pub async fn begin(
    state: &AppState,
    caller: &str,
    key: &str,
    fingerprint: String,
) -> Result<Begin> {
    let store_key = state.hasher.idempotency_key(caller, key).to_hex();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let until = UnixMs(state.store.now().0 + CLAIM_MS);
        match state
            .store
            .claim_idempotency(&store_key, &fingerprint, until)
            .await?
        {
            IdempotencyClaim::Claimed => {
                return Ok(Begin::Run(Claim {
                    store_key,
                    fingerprint,
                }));
            }
            IdempotencyClaim::Held(held) => {
                if held.fingerprint != fingerprint {
                    return Err(Error::IdempotencyKeyReused);
                }
                if let Some(sealed) = held.answer {
                    let plain = state.idempotency.open(&store_key, &sealed)?;
                    return serde_json::from_slice(&plain)
                        .map(Begin::Replay)
                        .map_err(|e| Error::Internal(format!("a remembered answer: {e}")));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::IdempotencyInProgress);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether a retry may cure an answer of `status`, so it is not kept: the store or a deadline failed
/// (5xx), a limit said wait (429), or the caller was not let in (401, 403: nothing ran).
pub fn retry_may_cure(status: u16) -> bool {
    status >= 500 || matches!(status, 401 | 403 | 429)
}

/// Keeps the answer of a claimed request for [`KEEP_MS`], or forgets the claim when a retry may cure
/// the answer or it is too large to keep. A store that fails here costs only the replay: the claim
/// lapses after [`CLAIM_MS`].
pub async fn finish(state: &AppState, claim: Claim, answer: &Answer) {
    let keep = !retry_may_cure(answer.status) && answer.body.len() <= MAX_ANSWER_BYTES;
    let outcome = if keep {
        let sealed = serde_json::to_vec(answer)
            .map_err(|e| Error::Internal(format!("an answer to remember: {e}")))
            .and_then(|plain| state.idempotency.seal(&claim.store_key, &plain));
        match sealed {
            Ok(sealed) => {
                let record = IdempotentRequest {
                    fingerprint: claim.fingerprint,
                    answer: Some(sealed),
                    expires_at: UnixMs(state.store.now().0 + KEEP_MS),
                };
                state
                    .store
                    .finish_idempotency(&claim.store_key, record)
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "an answer could not be sealed; its key is released");
                return forget(state, claim).await;
            }
        }
    } else {
        return forget(state, claim).await;
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "the idempotency record could not be written; it lapses by itself");
    }
}

/// Forgets a claim whose answer is not kept (the retry runs anew).
pub async fn forget(state: &AppState, claim: Claim) {
    if let Err(e) = state.store.release_idempotency(&claim.store_key).await {
        tracing::warn!(error = %e, "an idempotency claim could not be released; it lapses by itself");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(check_key("order-1234:attempt").is_ok());
        assert!(check_key(&"a".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "é", "\t", &"a".repeat(256)] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprints_tell_every_part_apart() {
        let f = fingerprint("POST", "/api/v1/tickets", "application/json", b"{}");
        assert_eq!(
            f,
            fingerprint("POST", "/api/v1/tickets", "application/json", b"{}")
        );
        for other in [
            fingerprint("PUT", "/api/v1/tickets", "application/json", b"{}"),
            fingerprint("POST", "/api/v1/tickets/batch", "application/json", b"{}"),
            fingerprint("POST", "/api/v1/tickets", "text/plain", b"{}"),
            fingerprint("POST", "/api/v1/tickets", "application/json", b"{ }"),
            // the parts' lengths are hashed: moving bytes across a boundary is another request
            fingerprint("POST", "/api/v1/ticketsapplication/json", "", b"{}"),
        ] {
            assert_ne!(f, other);
        }
    }
}
