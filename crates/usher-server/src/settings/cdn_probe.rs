//! `[cdn_probe]`: how the CDNs of the pool are probed.

use serde::Deserialize;

/// How the CDNs of the pool are probed (each CDN with a `canary` object).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdnProbeSettings {
    /// Milliseconds between two probes of a CDN; 0: no probes.
    pub interval_ms: u64,
    /// Longest a probe may take, in milliseconds.
    pub timeout_ms: u64,
    /// Failures in a row that make a CDN unhealthy.
    pub fail_after: u32,
    /// Successes in a row that make an unhealthy CDN healthy again.
    pub recover_after: u32,
    /// Whether an unhealthy CDN leaves playlists and steering altogether (instead of going last).
    pub exclude_unhealthy: bool,
    /// Whether probes may reach loopback, private, link-local and other non-public addresses (a CDN
    /// edge on the local network, the tests' nginx); off, such a canary fails without a request.
    pub allow_private_targets: bool,
}

impl Default for CdnProbeSettings {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            timeout_ms: 2_000,
            fail_after: 3,
            recover_after: 2,
            exclude_unhealthy: false,
            allow_private_targets: false,
        }
    }
}
