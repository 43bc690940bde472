//! Operations: liveness and readiness.

use serde::Serialize;
use utoipa::ToSchema;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// `ok`.
    pub status: &'static str,
}

/// Whether the node takes work: `ready`, `degraded` (riding a store outage), `not_ready` (with what is missing)
/// or `draining`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (the store is unreachable within the outage grace: ready, with playing sessions
    /// kept playing and new admits refused), `not_ready` or `draining`.
    #[schema(pattern = "^(ready|degraded|not_ready|draining)$")]
    pub status: &'static str,
    /// `ok` or `unavailable` (absent while draining).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
    /// `loaded`, `not_needed` or `missing` (absent while draining or without a store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoip: Option<&'static str>,
}

/// This document, OpenAPI 3.1: its members are those the OpenAPI Specification defines
/// (<https://spec.openapis.org/oas/v3.1.0>), not described again here. Documentation only: the handler
/// serves the finished document itself.
#[derive(ToSchema)]
#[expect(dead_code, reason = "describes the served document; never built")]
pub struct OpenApiDocument {
    /// `3.1.0`.
    openapi: String,
    /// Title, description, licence and version.
    info: std::collections::BTreeMap<String, serde_json::Value>,
    /// The operations, by path.
    paths: std::collections::BTreeMap<String, serde_json::Value>,
    /// Schemas and security schemes.
    components: std::collections::BTreeMap<String, serde_json::Value>,
    /// The operations' groups.
    tags: Vec<std::collections::BTreeMap<String, serde_json::Value>>,
}
