//! The Usher server: configuration, the HTTP API, the watch page, the built-in origin and operations.
//!
//! # Layout
//! - [`service`]: what Usher does, with no HTTP in it: the viewer flow (admit, heartbeat, grants), delivery
//!   over the CDN pool, callers and console sessions, the audit log, and the admin actions
//!   ([`service::admin`]: shows, tickets, CDNs, API keys, users, sessions, GeoIP, audit, dashboard), all
//!   failing with the one [`service::Error`].
//! - [`http`]: the router and one adapter module per resource (tickets, shows, sessions, API keys,
//!   playback, watch page, origin, operations), the answers' types ([`http::views`]), the extractors and
//!   the error's RFC 9457 rendering ([`http::error`]).
//! - [`console`]: the admin console's pages and forms, over the same actions as the API.
//! - [`openapi`]: the API document generated from the handlers and their answer types, and its reference
//!   page.
//! - [`settings`]: the configuration tree and its validation.
//! - [`app`]: startup ([`app::Application::build`]) and graceful shutdown ([`app::Application::run_until`]).
//! - [`state`]: the one [`state::AppState`] handlers draw from.
//! - [`outcomes`]: admit outcomes per minute for the dashboard.
//! - [`pages`]: templates and embedded front-end assets.
//! - [`telemetry`]: logs and metrics.
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
