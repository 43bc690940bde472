//! The Usher server: configuration, the HTTP API, the watch page, the built-in origin and operations.
//!
//! # Layout
//! - [`auth`]: API keys and console users as one [`auth::Caller`]; passwords, console sessions, CSRF,
//!   login throttling, roles.
//! - [`audit`]: the audit log of every change, as JSON and CSV.
//! - [`console`]: the admin console's pages and forms, over the same actions as the API.
//! - [`outcomes`]: admit outcomes per minute for the dashboard.
//! - [`settings`]: the configuration tree and its validation.
//! - [`app`]: startup ([`app::Application::build`]) and graceful shutdown ([`app::Application::run_until`]).
//! - [`state`]: the one [`state::AppState`] handlers draw from.
//! - [`http`]: the router and one module per resource (tickets, shows, sessions, API keys, playback,
//!   watch page, origin, operations).
//! - [`viewer`]: the viewer flow (admit, heartbeat, grants) that the playback handlers translate.
//! - [`openapi`]: the API document generated from the handlers, and its reference page.
//! - [`error`]: the one error type and its RFC 9457 rendering.
//! - [`extract`]: extractors whose rejections are our problem+json; API-key scopes; the device.
//! - [`pages`]: templates and embedded front-end assets.
//! - [`telemetry`]: logs and metrics.
//! - [`delivery`]: the CDN pool, a session's grants per CDN and the content-steering master playlist.
//! - [`cdn_probe`]: health probes of the CDN pool.
//! - [`media_cache`]: the origin's media files in memory.
//! - [`backup`]: snapshots of the embedded store (`POST /api/v1/backup`, `usher backup`, `usher restore`).
//! - [`demo`]: `usher demo`.
//! - [`sign_url`]: `usher sign-url`, what a viewer gets from a CDN signing scheme.

pub mod app;
pub mod backup;
pub mod cdn_probe;
pub mod console;
pub mod demo;
pub mod http;
pub mod media_cache;
pub mod openapi;
pub mod outcomes;
pub mod pages;
pub mod service;
pub mod settings;
pub mod sign_url;
pub mod state;
pub mod telemetry;
