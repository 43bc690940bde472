//! The admin actions, one module per resource: what the JSON API, the console and the CLI do to shows,
//! tickets, CDNs, API keys, console users, sessions, the GeoIP database, the audit log and the dashboard.
//!
//! Each action takes the state and the [`crate::service::Caller`], checks the caller's permission, acts,
//! writes its audit entry and returns domain values or a [`crate::service::Error`]; the adapters
//! (`http/`, `console/`, `main.rs`) only parse their input and render what comes back, so an action is
//! authorized and audited the same way whichever door it came through.
//!
//! - [`shows`]: create or replace, publish, delete, poster.
//! - [`tickets`]: register (one or a batch), status and usage, search, revoke, the console's preview.
//! - [`cdns`]: the pool: create or replace, change, delete, test-sign.
//! - [`api_keys`]: issue, list, delete.
//! - [`users`]: console users: add, change role or password, delete; one's own password.
//! - [`sessions`]: list, end.
//! - [`geoip`]: status, upload, reload.
//! - [`audit`]: read the audit log.
//! - [`dashboard`]: the dashboard's figures.

pub mod api_keys;
pub mod audit;
pub mod cdns;
pub mod dashboard;
pub mod geoip;
pub mod ingest;
pub mod sessions;
pub mod shows;
pub mod tickets;
pub mod uploads;
pub mod users;
