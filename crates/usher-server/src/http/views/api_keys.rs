//! API keys, never with their secret but in the creation answer.

use serde::Serialize;
use usher_core::ids::ApiKeyId;
use usher_core::store::{ApiKey, Scope};
use utoipa::ToSchema;

use super::rfc3339;

/// An API key, without its secret (the creation answer alone carries `key`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key's public id.
    pub id: ApiKeyId,
    /// A name for humans.
    pub name: String,
    /// What it may do (`admin` is everything).
    pub scopes: Vec<Scope>,
    /// When it was made.
    #[schema(format = DateTime, required = true)]
    pub created_at: Option<String>,
    /// Its last successful use (kept loosely).
    #[schema(format = DateTime, required = true)]
    pub last_used_at: Option<String>,
    /// The key to send as `Authorization: Bearer <key>`: in the creation answer only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.clone(),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(|t| t.to_rfc3339()),
            key: None,
        }
    }
}

impl ApiKeyView {
    /// A new key with its secret text, shown this once.
    pub fn created(k: &ApiKey, secret: String) -> Self {
        Self {
            key: Some(secret),
            ..Self::from(k)
        }
    }
}

/// Every API key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys.
    pub api_keys: Vec<ApiKeyView>,
}
