//! A member of the CDN pool: where viewers fetch a show's stream from and how URLs for it are signed.
//!
//! The signing configuration is kept as the JSON the admin gave (`{"scheme": "nginx", "secret": …}`), keys
//! included, because this crate knows no vendor scheme (`usher-cdn` parses it; it depends on this crate).
//! It is write-only: [`SigningConfig`] never shows its keys in `Debug`, and the API answers with
//! summaries built by the server, never with the stored value.

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;
use crate::ids::CdnId;
use crate::secret::SecretHash;

/// A CDN's signing configuration as given, keys included. `Debug` prints only the scheme's name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct SigningConfig(pub serde_json::Value);

impl SigningConfig {
    /// The scheme's tag (`nginx`, `akamai`, …), `None` for Usher's own origin (no stored keys).
    pub fn scheme(&self) -> Option<&str> {
        self.0.get("scheme").and_then(serde_json::Value::as_str)
    }
}

impl std::fmt::Debug for SigningConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningConfig")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}

/// What the health checks last found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Not checked (yet): treated as healthy.
    #[default]
    Unknown,
    /// The last checks passed.
    Healthy,
    /// The last checks failed: the CDN goes to the end of the steering order.
    Unhealthy,
}

/// A CDN's health record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CdnHealth {
    /// The state.
    pub state: HealthState,
    /// The last failure, if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When it was last checked.
    #[serde(default)]
    pub checked_at: Option<UnixMs>,
    /// How long the last successful check took, in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u32>,
    /// Since when the state holds.
    #[serde(default)]
    pub since: Option<UnixMs>,
}

/// A member of the CDN pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cdn {
    /// Its id (`origin` for Usher's own origin); also the HLS pathway id.
    pub id: CdnId,
    /// A name for humans.
    pub name: String,
    /// Where viewers reach it (`https://cdn.example`; `/o/` for the origin), no trailing `/`.
    pub base_url: String,
    /// How its URLs are signed, keys included (write-only).
    pub signing: SigningConfig,
    /// Lower comes first.
    pub priority: u32,
    /// Among equal priorities, higher comes first.
    pub weight: u32,
    /// Disabled CDNs get no grants and no pathway.
    pub enabled: bool,
    /// What the health checks last found.
    #[serde(default)]
    pub health: CdnHealth,
    /// The canary object the health prober fetches through this CDN (relative to `base_url`, signed
    /// with its scheme); `None`: not probed.
    #[serde(default)]
    pub canary: Option<String>,
    /// Keyed hash of the secret this CDN sends when it pulls from Usher's origin; `None`: no access.
    #[serde(default)]
    pub origin_secret_hash: Option<SecretHash>,
    /// When it was added.
    pub created_at: UnixMs,
    /// When it was last changed.
    pub updated_at: UnixMs,
}

impl Cdn {
    /// Whether viewers may be steered to it now.
    pub fn in_service(&self) -> bool {
        self.enabled && self.health.state != HealthState::Unhealthy
    }
}

/// The enabled CDNs, best first: healthy before unhealthy, then by priority (lower first), weight (higher
/// first) and id.
pub fn delivery_order(pool: &[Cdn]) -> Vec<&Cdn> {
    let mut v: Vec<&Cdn> = pool.iter().filter(|c| c.enabled).collect();
    v.sort_by(|a, b| {
        (a.health.state == HealthState::Unhealthy)
            .cmp(&(b.health.state == HealthState::Unhealthy))
            .then(a.priority.cmp(&b.priority))
            .then(b.weight.cmp(&a.weight))
            .then_with(|| a.id.cmp(&b.id))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdn(id: &str, priority: u32, weight: u32, enabled: bool, state: HealthState) -> Cdn {
        Cdn {
            id: CdnId::parse(id).unwrap(),
            name: id.into(),
            base_url: format!("https://{id}.example"),
            signing: SigningConfig(serde_json::json!({"scheme": "nginx", "secret": "hunter2"})),
            priority,
            weight,
            enabled,
            health: CdnHealth {
                state,
                ..CdnHealth::default()
            },
            canary: None,
            origin_secret_hash: None,
            created_at: UnixMs(0),
            updated_at: UnixMs(0),
        }
    }

    #[test]
    fn order_and_debug() {
        let pool = [
            cdn("c", 10, 1, true, HealthState::Unknown),
            cdn("a", 10, 5, true, HealthState::Unhealthy),
            cdn("b", 5, 1, true, HealthState::Healthy),
            cdn("d", 10, 9, true, HealthState::Unknown),
            cdn("e", 1, 1, false, HealthState::Healthy),
        ];
        let ids: Vec<&str> = delivery_order(&pool)
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(ids, ["b", "d", "c", "a"]);
        assert!(!format!("{:?}", pool[0]).contains("hunter2"));
        assert!(!pool[1].in_service());
        assert!(!pool[4].in_service());
        assert!(pool[0].in_service());
    }
}
