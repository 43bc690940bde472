//! usher-server's integration tests, one binary: each module is one area, and `support` (the in-process
//! `spawn_app`) compiles once for all of them. Tests that start real processes (`audit_retention`,
//! `backup`, `connections`, `encryption`, `geo`, `live`, `login_flood`, `multinode`, `process`, `search`, `uploads`) run one at a time: see
//! the `processes` test group in `.config/nextest.toml`.

mod support;

mod admin_console;
mod api;
mod audit_retention;
mod backup;
mod binding;
mod cdn;
mod cdn_vendors;
mod connections;
mod doors;
mod edge;
mod encryption;
mod examples;
mod geo;
mod idempotency;
mod keys;
mod languages;
mod live;
mod login;
mod login_flood;
mod malformed;
mod metrics;
mod multinode;
mod openapi;
mod origin;
mod outage;
mod privacy;
mod process;
mod redis_schema;
mod refusals;
mod rotation;
mod search;
mod session_integrity;
mod sign_url;
mod sign_url_vendors;
mod tv;
mod uploads;
mod webhooks;
