//! `[login]`: how failed console logins (and wrong current passwords) slow further attempts down, and how
//! many password checks (argon2, ~19 MiB of memory each) run at once.

use std::time::Duration;

use serde::Deserialize;
use usher_core::admin::Backoff;

use super::error::{ConfigError, invalid};

/// `[login]`: attempts are counted per user and per client network (an IPv4 address, an IPv6 /64) before
/// the password is checked. The first `user_attempts` (`address_attempts`) pass at once; each further one
/// waits twice as long as the one before, from `backoff_initial_ms` up to `user_backoff_max_s`
/// (`address_backoff_max_s`). Attempts are forgotten `window_s` after the last one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Attempts for one user name that pass without waiting.
    pub user_attempts: u32,
    /// Attempts from one client network (IPv4 address, IPv6 /64) that pass without waiting.
    pub address_attempts: u32,
    /// The first wait, in milliseconds.
    pub backoff_initial_ms: u64,
    /// The longest wait of one user, in seconds: nobody can lock a user out for longer at a time.
    pub user_backoff_max_s: u64,
    /// The longest wait of one client network, in seconds.
    pub address_backoff_max_s: u64,
    /// How long attempts are remembered after the last one, in seconds.
    pub window_s: u64,
    /// Password checks that run at once (0: one per CPU core); each holds ~19 MiB while it runs.
    pub concurrent_checks: usize,
    /// How long an attempt waits for a free check before it is answered 429 `rate_limited`, in ms.
    pub check_wait_ms: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            user_attempts: 5,
            address_attempts: 20,
            backoff_initial_ms: 1_000,
            user_backoff_max_s: 60,
            address_backoff_max_s: 900,
            window_s: 900,
            concurrent_checks: 0,
            check_wait_ms: 2_000,
        }
    }
}

impl LoginSettings {
    /// Checks the values.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(1..=1_000_000).contains(&self.user_attempts) {
            return Err(invalid("login.user_attempts", "must be 1 to 1000000"));
        }
        if !(1..=1_000_000).contains(&self.address_attempts) {
            return Err(invalid("login.address_attempts", "must be 1 to 1000000"));
        }
        if !(1..=60_000).contains(&self.backoff_initial_ms) {
            return Err(invalid("login.backoff_initial_ms", "must be 1 to 60000"));
        }
        let max_ms = |s: u64| s.saturating_mul(1000);
        if !(1..=86_400).contains(&self.user_backoff_max_s)
            || max_ms(self.user_backoff_max_s) < self.backoff_initial_ms
        {
            return Err(invalid(
                "login.user_backoff_max_s",
                "must be 1 to 86400, and not shorter than login.backoff_initial_ms",
            ));
        }
        if !(1..=86_400).contains(&self.address_backoff_max_s)
            || max_ms(self.address_backoff_max_s) < self.backoff_initial_ms
        {
            return Err(invalid(
                "login.address_backoff_max_s",
                "must be 1 to 86400, and not shorter than login.backoff_initial_ms",
            ));
        }
        if !(60..=604_800).contains(&self.window_s) {
            return Err(invalid("login.window_s", "must be 60 to 604800"));
        }
        if self.concurrent_checks > 256 {
            return Err(invalid(
                "login.concurrent_checks",
                "must be 0 (one per CPU core) to 256",
            ));
        }
        if !(1..=60_000).contains(&self.check_wait_ms) {
            return Err(invalid("login.check_wait_ms", "must be 1 to 60000"));
        }
        Ok(())
    }

    fn rule(&self, free: u32, max_s: u64) -> Backoff {
        Backoff {
            free,
            initial_ms: self.backoff_initial_ms as i64,
            max_ms: (max_s * 1000) as i64,
            window_ms: (self.window_s * 1000) as i64,
        }
    }

    /// The backoff of one user name.
    pub fn user_rule(&self) -> Backoff {
        self.rule(self.user_attempts, self.user_backoff_max_s)
    }

    /// The backoff of one client network.
    pub fn address_rule(&self) -> Backoff {
        self.rule(self.address_attempts, self.address_backoff_max_s)
    }

    /// Password checks at once: the setting, or the machine's cores.
    pub fn checks(&self) -> usize {
        if self.concurrent_checks > 0 {
            self.concurrent_checks
        } else {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        }
    }

    /// How long an attempt waits for a check.
    pub fn check_wait(&self) -> Duration {
        Duration::from_millis(self.check_wait_ms)
    }
}
