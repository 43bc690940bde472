//! Signing of media URLs, cookies and headers for the CDNs Usher delivers through, one module per vendor
//! scheme, each byte-exact to the vendor's published algorithm.
//!
//! Every function here is pure: it takes key material, a path or URL and times (or a playlist and its
//! pathways), and returns what a viewer gets. Nothing reads a clock, the network or a file; the caller decides "now".
//!
//! - [`scheme::Scheme`]: the one configuration enum (serde, tagged by `scheme`) naming a vendor scheme with
//!   its parameters and key material; [`scheme::Scheme::signer`] validates and parses the key once into a
//!   [`scheme::Signer`] that signs many [`request::SignRequest`]s.
//! - [`request`]: what to sign ([`request::SignRequest`]) and what a viewer gets ([`request::Signed`]: a URL,
//!   cookies and headers).
//! - [`akamai`], [`cloudfront`], [`google`], [`bunny`], [`nginx`], [`cloudflare`] (WAF token),
//!   [`cloudflare_stream`], [`fastly`], [`usher`]: the vendor schemes.
//! - [`error`]: why signing was refused.
//! - [`playlist`]: the HLS master playlist rewritten per session, every URI signed for each CDN pathway.
//!
//! Key material lives in [`secrecy`] types and is never printed by `Debug`.

pub mod akamai;
pub mod bunny;
pub mod cloudflare;
pub mod cloudflare_stream;
pub mod cloudfront;
pub mod error;
pub mod fastly;
pub mod google;
pub mod nginx;
pub mod playlist;
pub mod request;
pub mod scheme;
mod uri;
pub mod usher;
#[cfg(test)]
mod vectors;

pub use error::SignError;
pub use request::{AddressBinding, Capabilities, Cookie, Header, Resource, SignRequest, Signed};
pub use scheme::{Scheme, Signer};
