//! `[tv]`: TV sign-in codes (RFC 8628 device authorization: `/tv` shows a code, `/activate` approves it).

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// How long a TV's code waits for a phone, and how often the TV asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TvSettings {
    /// Seconds a code waits for its approval (RFC 8628 `expires_in`); the TV page then shows a new one.
    pub code_ttl_s: u32,
    /// Seconds the TV waits between polls (RFC 8628 `interval`); each `slow_down` adds 5.
    pub poll_interval_s: u32,
}

impl Default for TvSettings {
    fn default() -> Self {
        Self {
            code_ttl_s: 600,
            poll_interval_s: 5,
        }
    }
}

impl TvSettings {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(5..=3_600).contains(&self.code_ttl_s) {
            return Err(invalid("tv.code_ttl_s", "must be 5 to 3600"));
        }
        if !(2..=60).contains(&self.poll_interval_s) {
            return Err(invalid("tv.poll_interval_s", "must be 2 to 60"));
        }
        if self.poll_interval_s >= self.code_ttl_s {
            return Err(invalid(
                "tv.poll_interval_s",
                "must be shorter than tv.code_ttl_s",
            ));
        }
        Ok(())
    }
}
