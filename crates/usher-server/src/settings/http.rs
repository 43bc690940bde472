//! `[http]`: limits, timeouts, CORS and the shutdown drain of the HTTP server, and how closely media grants
//! are bound to the viewer's address.

use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// HTTP settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes (a batch of 10,000 tickets needs about 2 MB).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503, in seconds.
    pub request_timeout_s: u64,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds.
    pub drain_timeout_s: u64,
    /// On SIGTERM, how long to answer "not ready" before closing the listener, so a load balancer stops
    /// sending new requests first, in seconds.
    pub shutdown_delay_s: u64,
    /// While the store is unreachable, how long sessions already playing keep playing (their grants are
    /// honoured by the origin without the lease check, heartbeats answer "degraded"), in seconds.
    pub store_outage_grace_s: u64,
    /// Origins (scheme://host[:port]) whose pages may fetch media from the built-in origin.
    pub cors_origins: Vec<String>,
    /// Mark cookies `Secure` (default: when `public_url` is https).
    pub secure_cookies: Option<bool>,
    /// The prefix length of the network around an IPv4 viewer's address that media grants are bound to
    /// (24: the viewer's /24); 0 binds nothing. At most 32.
    pub grant_address_prefix_v4: u8,
    /// The same for IPv6 viewers (64: the viewer's /64); 0 binds nothing. At most 128.
    pub grant_address_prefix_v6: u8,
    /// Largest body of the routes anyone may call (admit, heartbeat, leave, the console login), in bytes.
    pub max_public_body_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout_s: 30,
            drain_timeout_s: 30,
            shutdown_delay_s: 0,
            store_outage_grace_s: 120,
            cors_origins: Vec::new(),
            secure_cookies: None,
            grant_address_prefix_v4: 24,
            grant_address_prefix_v6: 64,
            max_public_body_bytes: 4096,
        }
    }
}

impl HttpSettings {
    /// The prefix length grants bind around `client` (by its family; IPv4-mapped IPv6 addresses count as
    /// IPv4); 0: none.
    pub fn grant_address_prefix(&self, client: std::net::IpAddr) -> u8 {
        if client.to_canonical().is_ipv4() {
            self.grant_address_prefix_v4
        } else {
            self.grant_address_prefix_v6
        }
    }
}

impl HttpSettings {
    /// Checks the limit of public bodies.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub(super) fn check_limits(&self) -> Result<(), ConfigError> {
        if !(256..=self.max_body_bytes.min(1024 * 1024)).contains(&self.max_public_body_bytes) {
            return Err(invalid(
                "http.max_public_body_bytes",
                "must be 256 to 1048576 and at most http.max_body_bytes",
            ));
        }
        Ok(())
    }
}
