//! The Usher server: configuration, the HTTP API, the watch page, the built-in origin and operations.
//!
//! # Layout
//! Three layers, each importing only the ones below it (ARCHITECTURE.md; `scripts/check-layers.py`
//! enforces it):
//! - adapters: [`http`] (the router, one handler module per resource, [`http::views`] the type of each
//!   JSON answer, [`http::error`] mapping the service error to RFC 9457 problems, extractors), [`console`] (the admin pages and forms over the same
//!   services), [`cli`] (the `usher` commands), [`openapi`] (finishes the document the router generates);
//! - services: [`service`] (viewer, delivery, auth, audit, the admin actions in [`service::admin`]) — no
//!   HTTP types, one domain error;
//! - the node's parts: [`state`] (what services draw from), [`settings`] (the configuration tree and its
//!   validation), [`startup`] (build, serve, drain), [`server`] (connections: caps, deadlines, HTTP/1 and
//!   HTTP/2 limits), [`limits`] (rate limits), [`tasks`] (background loops), [`cdn_probe`],
//!   [`media_cache`], [`metered_store`] (times every store call), [`outcomes`], [`packager`] (ffmpeg, for `usher package` and upload jobs), [`ingest`] (live input
//!   over RTMP and SRT, transcoded by ffmpeg), [`pages`] (templates and embedded assets), [`telemetry`], [`logged`] (what a log line may show of a
//!   client), [`backup`];
//!   below them the crates usher-core, usher-store, usher-cdn and usher-geo.

pub mod backup;
pub mod cdn_probe;
pub mod cli;
pub mod console;
pub mod http;
pub mod i18n;
pub mod ingest;
pub mod lease_checks;
pub mod limits;
pub mod logged;
pub mod media_cache;
pub mod metered_store;
pub mod openapi;
pub mod outcomes;
pub mod packager;
pub mod pages;
pub mod server;
pub mod service;
pub mod settings;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod webhook_sender;
