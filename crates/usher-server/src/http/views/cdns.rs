//! The CDN pool, never with its keys, and what a viewer would get from a CDN for one object.

use serde::Serialize;
use usher_core::cdn::{Cdn, HealthState};
use usher_core::ids::CdnId;
use utoipa::ToSchema;

use crate::service::admin::cdns::SignedObject as Signed;

/// A member of the CDN pool as the API shows it: never its keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdnView {
    /// Its id, also the HLS pathway id.
    pub id: CdnId,
    /// A name for humans.
    pub name: String,
    /// Where viewers reach it (`/o` for the origin).
    pub base_url: String,
    /// Its signing scheme (`akamai`, `cloudfront`, `google`, `bunny`, `nginx`, `cloudflare`,
    /// `cloudflare_stream`, `fastly`; `usher` for the origin).
    #[schema(required = true)]
    pub scheme: Option<String>,
    /// Whether signing keys are configured (they are never shown).
    pub key_set: bool,
    /// Lower comes first.
    pub priority: u32,
    /// Higher comes first among equal priorities.
    pub weight: u32,
    /// Whether it delivers.
    pub enabled: bool,
    /// Whether it is Usher's own origin.
    pub builtin: bool,
    /// The object the health prober fetches through it.
    #[schema(required = true)]
    pub canary: Option<String>,
    /// Whether an origin-pull secret is set (it is never shown).
    pub origin_secret_set: bool,
    /// Its health.
    pub health: CdnHealthView,
    /// When it was added.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A CDN's health.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdnHealthView {
    /// `unknown`, `healthy` or `unhealthy`.
    #[schema(value_type = String, pattern = "^(unknown|healthy|unhealthy)$")]
    pub state: HealthState,
    /// The last failure.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When it was last checked.
    #[schema(format = DateTime, required = true)]
    pub checked_at: Option<String>,
    /// The last probe's time to answer, in milliseconds.
    #[schema(required = true)]
    pub latency_ms: Option<u32>,
    /// Since when it has been in this state.
    #[schema(format = DateTime, required = true)]
    pub since: Option<String>,
}

impl From<&Cdn> for CdnView {
    fn from(c: &Cdn) -> Self {
        let key_set = c.id.is_origin()
            || c.signing
                .0
                .as_object()
                .is_some_and(|o| o.keys().any(|k| k != "scheme"));
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            base_url: c.base_url.clone(),
            scheme: c.signing.scheme().map(str::to_owned),
            key_set,
            priority: c.priority,
            weight: c.weight,
            enabled: c.enabled,
            builtin: c.id.is_origin(),
            canary: c.canary.clone(),
            origin_secret_set: c.origin_secret_hash.is_some(),
            health: CdnHealthView {
                state: c.health.state,
                last_error: c.health.last_error.clone(),
                checked_at: c.health.checked_at.map(|t| t.to_rfc3339()),
                latency_ms: c.health.latency_ms,
                since: c.health.since.map(|t| t.to_rfc3339()),
            },
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

/// The CDN pool.
#[derive(Debug, Serialize, ToSchema)]
pub struct CdnList {
    /// Every member by id, the origin included.
    pub cdns: Vec<CdnView>,
}

/// What a viewer would get from a CDN for one object (`POST /api/v1/cdns/{cdn_id}/sign`).
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedObject {
    /// The CDN.
    pub cdn: CdnId,
    /// Its signing scheme.
    #[schema(required = true)]
    pub scheme: Option<String>,
    /// The URL to fetch (signed itself when the scheme signs URLs).
    pub url: String,
    /// Cookies to hold.
    pub cookies: Vec<SignedCookie>,
    /// Headers to send.
    pub headers: Vec<SignedHeader>,
    /// When the signature lapses.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A cookie a CDN needs, with its attributes and the `Set-Cookie` value that sets it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedCookie {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// `Domain=`, when the CDN's host is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `Path=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// The `Set-Cookie` header value that sets it.
    pub set_cookie: String,
}

/// A request header a CDN needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedHeader {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

impl From<&Signed> for SignedObject {
    fn from(s: &Signed) -> Self {
        Self {
            cdn: s.cdn.clone(),
            scheme: s.scheme.clone(),
            url: s.signed.url.clone(),
            cookies: s
                .signed
                .cookies
                .iter()
                .map(|c| SignedCookie {
                    name: c.name.clone(),
                    value: c.value.clone(),
                    domain: c.domain.clone(),
                    path: c.path.clone(),
                    secure: c.secure,
                    http_only: c.http_only,
                    set_cookie: c.set_cookie(),
                })
                .collect(),
            headers: s
                .signed
                .headers
                .iter()
                .map(|h| SignedHeader {
                    name: h.name.clone(),
                    value: h.value.clone(),
                })
                .collect(),
            expires_at: s.expires_at.to_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use usher_core::cdn::SigningConfig;

    use super::*;
    use crate::service::delivery::default_origin;

    #[test]
    fn views_hide_keys() {
        let mut c = default_origin();
        c.id = CdnId::parse("a").unwrap();
        c.signing = SigningConfig(json!({"scheme": "nginx", "secret": "hunter2-secret"}));
        let v = serde_json::to_string(&CdnView::from(&c)).unwrap();
        assert!(!v.contains("hunter2"), "{v}");
        assert!(v.contains("\"key_set\":true"), "{v}");
    }
}
