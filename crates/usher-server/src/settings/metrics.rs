//! `[metrics]`: who may read `/metrics`.

use std::net::SocketAddr;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use super::error::{ConfigError, invalid};

/// `[metrics]`: `/metrics` answers anyone unless a `token` is set (then only
/// `Authorization: Bearer <token>`), and is served on a `listen` address of its own when one is set
/// (then the main address answers 404 there).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// The bearer token scrapers must send (at least 16 characters).
    pub token: Option<SecretString>,
    /// A separate address (`host:port`) that serves `/metrics` alone.
    pub listen: Option<String>,
}

impl MetricsSettings {
    /// Checks the values; returns the separate address, when one is set.
    pub(super) fn check(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if let Some(t) = &self.token {
            let t = t.expose_secret();
            if t.len() < 16 || t.len() > 512 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "metrics.token",
                    "must be 16 to 512 visible ASCII characters",
                ));
            }
        }
        self.listen
            .as_deref()
            .map(|l| {
                l.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        format!("`{l}` is not an address like 127.0.0.1:9100"),
                    )
                })
            })
            .transpose()
    }
}
