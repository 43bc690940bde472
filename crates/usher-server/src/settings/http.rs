//! `[http]`: limits, timeouts, CORS and the shutdown drain of the HTTP server, and how closely media grants
//! are bound to the viewer's address.

use ipnet::IpNet;
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
    /// Longest a client may take to send a request's line and headers, counted from its first byte, in
    /// seconds; then the connection is closed.
    pub header_read_timeout_s: u64,
    /// Longest a connection may stay open with no request under way, in seconds.
    pub idle_timeout_s: u64,
    /// Most connections open at once (at most what the open-files limit leaves room for); more wait in
    /// the listen queue.
    pub max_connections: usize,
    /// Most connections one client address (IPv6: its /64) may hold; more are closed at once. 0: no cap.
    pub max_connections_per_address: usize,
    /// Peers (CIDR ranges or addresses) whose connections are not capped per address, besides
    /// `trusted_proxies`: by default loopback (a TLS proxy or a load generator on this machine).
    pub uncapped_peers: Vec<String>,
    /// Largest request head: the request line and headers (HTTP/1), the header list (HTTP/2), in bytes.
    pub max_header_bytes: usize,
    /// Most requests under way at once on one HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// How long the origin keeps the store's answer to "does this session still hold its seat" for
    /// the session's next media requests, in milliseconds (0: asks the store on every request); at most
    /// 5000. Another node's change reaches this node's origin at most this much later.
    pub media_lease_check_ms: u64,
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
            header_read_timeout_s: 10,
            idle_timeout_s: 60,
            max_connections: 50_000,
            max_connections_per_address: 1_000,
            uncapped_peers: vec!["127.0.0.0/8".into(), "::1".into()],
            max_header_bytes: 32 * 1024,
            max_concurrent_streams: 100,
            media_lease_check_ms: 250,
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
    /// Checks the limits of connections and bodies.
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
        if !(1..=300).contains(&self.header_read_timeout_s) {
            return Err(invalid("http.header_read_timeout_s", "must be 1 to 300"));
        }
        if !(1..=3600).contains(&self.idle_timeout_s) {
            return Err(invalid("http.idle_timeout_s", "must be 1 to 3600"));
        }
        if !(1..=10_000_000).contains(&self.max_connections) {
            return Err(invalid("http.max_connections", "must be 1 to 10000000"));
        }
        if self.max_connections_per_address > self.max_connections {
            return Err(invalid(
                "http.max_connections_per_address",
                "must be 0 (no cap) to http.max_connections",
            ));
        }
        super::geoip::networks("http.uncapped_peers", &self.uncapped_peers)?;
        // hyper reads a request head into one buffer of at least 8 KiB
        if !(8192..=1024 * 1024).contains(&self.max_header_bytes) {
            return Err(invalid("http.max_header_bytes", "must be 8192 to 1048576"));
        }
        if !(1..=10_000).contains(&self.max_concurrent_streams) {
            return Err(invalid("http.max_concurrent_streams", "must be 1 to 10000"));
        }
        if self.media_lease_check_ms > 5_000 {
            return Err(invalid("http.media_lease_check_ms", "must be 0 to 5000"));
        }
        Ok(())
    }

    /// The peers not capped per address (checked at start).
    pub fn uncapped_peers(&self) -> Vec<IpNet> {
        super::geoip::networks("http.uncapped_peers", &self.uncapped_peers).unwrap_or_default()
    }
}
