//! Password hashing and checking (argon2id PHC strings), off the async runtime and at most
//! `login.concurrent_checks` at once ([`PasswordChecks`]): each check holds ~19 MiB while it runs, so a
//! flood of logins waits for a slot (at most `login.check_wait_ms`, then 429 `rate_limited`) instead of
//! taking the process's memory with it (40 checks at once took 590 MiB more; two at a time, 21 MiB:
//! `tests/it/login_flood.rs`).

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use tokio::sync::Semaphore;

use crate::service::{Error, Result};

/// The password checks (argon2 runs, hashing or verifying) that may run at once on this node. A check
/// waits for a slot at most `wait`, then is refused with [`Error::Busy`]; the slot is held by the blocking
/// task itself, so a request that gives up (its time limit) does not free it before argon2 is done.
#[derive(Debug)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordChecks {
    /// `permits` checks at once (at least one), each waiting at most `wait` for its turn.
    pub fn new(permits: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(permits.max(1))),
            wait,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let slot = match tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned())
            .await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(Error::Internal("password check slots closed".into())),
            Err(_) => {
                metrics::counter!("usher_password_checks_total", "outcome" => "busy").increment(1);
                return Err(Error::Busy {
                    retry_after_s: self.wait.as_secs().max(1),
                });
            }
        };
        metrics::counter!("usher_password_checks_total", "outcome" => "run").increment(1);
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            check()
        })
        .await
        .map_err(|e| Error::Internal(format!("password check task: {e}")))
    }

    /// [`hash_password`] in a slot.
    ///
    /// # Errors
    /// [`Error::Busy`] when no slot frees up in time.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_blocking(&password)).await?
    }

    /// [`verify_password`] in a slot.
    ///
    /// # Errors
    /// [`Error::Busy`] when no slot frees up in time.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool> {
        self.run(move || verify_blocking(&password, &phc)).await
    }
}

fn hash_blocking(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Hashes a password with argon2id and a fresh salt, off the async runtime and outside
/// [`PasswordChecks`] (for the CLI and the first run, where no request waits; requests use the node's
/// `state.passwords`).
///
/// # Errors
/// `internal` if hashing fails (it does not for valid parameters).
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

fn rand_bytes(buf: &mut [u8]) {
    // the thread's cryptographically secure generator, as usher_core::ids::random_b64 uses
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), buf);
}
