//! `[store]`: the store backend and how to reach Redis.

use secrecy::SecretString;
use serde::Deserialize;

/// The store backend, chosen by `kind`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreSettings {
    /// In the process, on local disk under `data_dir`.
    #[default]
    Embedded,
    /// A Redis shared by several nodes.
    Redis(RedisSettings),
}

/// How to reach Redis (`store.kind = "redis"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port/db`, `rediss://…` (TLS) or `redis+unix:///path/redis.sock`.
    pub url: SecretString,
    /// Prefix of every key, to share one Redis between deployments.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Longest wait for a connection, in milliseconds.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for an answer, in milliseconds; past it the request answers 503 `store_unavailable`.
    #[serde(default = "default_response_timeout_ms")]
    pub response_timeout_ms: u64,
    /// Replicas that must acknowledge a ticket, show or key write before it is answered (`WAIT`).
    #[serde(default)]
    pub wait_replicas: u32,
    /// Longest `WAIT`, in milliseconds (less than `response_timeout_ms`).
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
    /// Find the master through Redis Sentinel (then `url` is not used).
    #[serde(default)]
    pub sentinel: Option<SentinelSettings>,
}

/// Redis Sentinel discovery (`[store.sentinel]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelSettings {
    /// The name the sentinels monitor the master under.
    pub master_name: String,
    /// Sentinel addresses, `host:port`.
    pub addresses: Vec<String>,
}

fn default_key_prefix() -> String {
    "usher:".into()
}

fn default_connect_timeout_ms() -> u64 {
    2000
}

fn default_response_timeout_ms() -> u64 {
    1000
}

fn default_wait_timeout_ms() -> u64 {
    1000
}
