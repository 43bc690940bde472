//! Operations: liveness and readiness.

use serde::Serialize;
use utoipa::ToSchema;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// `ok`.
    pub status: &'static str,
}

/// Whether the node takes work: `ready`, `not_ready` (with what is missing) or `draining`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `not_ready` or `draining`.
    #[schema(pattern = "^(ready|not_ready|draining)$")]
    pub status: &'static str,
    /// `ok` or `unavailable` (absent while draining).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
    /// `loaded`, `not_needed` or `missing` (absent while draining or without a store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoip: Option<&'static str>,
}
