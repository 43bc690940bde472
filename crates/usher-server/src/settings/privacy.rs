//! `[privacy]`: how long a ticket's personal data is kept (client addresses, countries, devices).

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// What becomes of a client address older than `addresses_keep_days`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AddressesAfter {
    /// Kept as its network: IPv4 /24, IPv6 /48 (addresses of one network merge into one entry).
    #[default]
    Truncate,
    /// Dropped.
    Drop,
}

/// `[privacy]`: each node applies these to every ticket's usage at start and every minute (a bounded
/// batch of tickets each time), measured by the store's clock from when an entry was last seen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// Days a client address is kept exact.
    pub addresses_keep_days: u32,
    /// What becomes of it then.
    pub addresses_after: AddressesAfter,
    /// Days devices (ids and labels), countries and addresses (exact or truncated) are kept; 0: while
    /// the ticket exists.
    pub usage_keep_days: u32,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            addresses_keep_days: 30,
            addresses_after: AddressesAfter::Truncate,
            usage_keep_days: 365,
        }
    }
}

impl PrivacySettings {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first setting out of range.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=3_650).contains(&self.addresses_keep_days) {
            return Err(invalid("privacy.addresses_keep_days", "must be 1 to 3650"));
        }
        if self.usage_keep_days > 36_500 {
            return Err(invalid(
                "privacy.usage_keep_days",
                "must be 0 (while the ticket exists) to 36500",
            ));
        }
        Ok(())
    }
}
