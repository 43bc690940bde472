//! `usher-load`: Usher's load generator. It speaks only HTTP to a running Usher (or to any server, for the
//! ceiling runs) and reports throughput and HDR latency quantiles per operation, errors by kind, and the
//! lease protocol's checks.
//!
//! # Layout
//! - [`client`]: a lean HTTP/1.1 client on hyper 1 — a fixed set of keep-alive connections ("lanes").
//! - [`api`]: Usher's API as the tool uses it (show, batch registration, admit, heartbeat, leave, media).
//! - [`setup`]: the file-descriptor budget, the run's show and tickets.
//! - [`viewers`]: the viewer scenario (ramp or doors open, heartbeats, segments, sharing attack).
//! - [`doors`]: the doors-open scenario (a show with a capacity, a crowd at once, its waiting room).
//! - [`saturate`]: closed-loop throughput runs (Usher operations, or plain GETs for the ceilings).
//! - [`prepare`]: tickets and live sessions made for another load tool (wrk), written as files.
//! - [`stats`]: histograms, errors by kind, checks; table and JSON forms.
//! - [`system`]: the open-files limit; a process's CPU and memory from `/proc`.

pub mod api;
pub mod client;
pub mod doors;
pub mod prepare;
pub mod saturate;
pub mod setup;
pub mod stats;
pub mod system;
pub mod viewers;
