//! `[audit]`: how long the audit log keeps its entries.

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[audit]`: entries older than `retention_days` go, and past `max_rows` the oldest go (each node's
/// background task prunes at start and every minute), so failed logins by the million cannot fill a disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Days an entry is kept.
    pub retention_days: u32,
    /// Most entries kept.
    pub max_rows: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            retention_days: 400,
            max_rows: 1_000_000,
        }
    }
}

impl AuditSettings {
    /// Checks the values.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(1..=36_500).contains(&self.retention_days) {
            return Err(invalid("audit.retention_days", "must be 1 to 36500"));
        }
        if !(1_000..=1_000_000).contains(&self.max_rows) {
            // Redis keeps at most 1,000,000 entries whatever this says
            return Err(invalid("audit.max_rows", "must be 1000 to 1000000"));
        }
        Ok(())
    }
}
