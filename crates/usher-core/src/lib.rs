//! Usher's domain, free of any runtime, web framework or database.
//!
//! # Layout
//! - [`admin`]: console users and roles, console sessions, the audit log, admit outcome counts.
//! - [`cdn`]: a member of the CDN pool (base URL, signing configuration, priority, health).
//! - [`ids`]: validated identifiers and secrets (`ShowId`, `TicketId`, `SessionId`, `DeviceId`, `TicketToken`).
//! - [`content_key`]: the AES-128 keys that encrypt a stream's segments, and the wrapped record the store
//!   keeps of each.
//! - [`clock`]: time as unix milliseconds, and the `Clock` that stores and tests inject.
//! - [`geo`]: country codes and a show's Geo policy, validated on write.
//! - [`grant`]: Usher's own signed, prefix-scoped media grant.
//! - [`show`] and [`ticket`]: what is sold and what admits.
//! - [`lease`]: the lease protocol of DESIGN.md, as pure rules over one ticket's leases, and the rule that
//!   ends a renewed session ([`lease::after_renewal`]).
//! - [`media_path`]: `MediaPath`, the one rule for paths under the media root (shows, origin, signers).
//! - [`privacy`]: the retention rules of a ticket's personal data (client addresses truncated to their
//!   network or dropped, old devices and countries dropped) and its erasure.
//! - [`secret`]: keyed hashing of tokens and API keys, constant-time comparison.
//! - [`session_secret`]: the rotating secret that controls a session, and the rule that tells a retry
//!   from a clone.
//! - [`store`]: the `Store` trait every backend implements, and its error type.
//! - [`webhook`]: webhook endpoints, event types, deliveries as the outbox keeps them, the signature.
//! - [`validation`]: the `ValidationError` every validated value reports, and the free-text rule.
//!
//! Imports inside the crate run one way: `store` → `privacy` → `lease` → `ticket` → `show` → `geo` →
//! `validation`, `media_path`, `ids`, `clock`; `store` → `content_key` → `clock`.

pub mod admin;
pub mod cdn;
pub mod clock;
pub mod content_key;
pub mod geo;
pub mod grant;
pub mod ids;
pub mod lease;
pub mod media_path;
pub mod privacy;
pub mod secret;
pub mod session_secret;
pub mod show;
pub mod store;
pub mod stream_key;
pub mod ticket;
pub mod tv;
pub mod validation;
pub mod webhook;
