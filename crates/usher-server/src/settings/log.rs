//! `[log]`: the log format and filter.

use serde::Deserialize;

/// Log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `json` (default) or `text`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `usher_server=debug,info`.
    pub level: String,
    /// Whether log lines may name a client's address (a viewer's, an encoder's): off, they say
    /// `withheld` instead, so the logs hold no personal data unless an operator asks for it (say, to
    /// find who floods the connections).
    pub client_addresses: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: "info".into(),
            client_addresses: false,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}
