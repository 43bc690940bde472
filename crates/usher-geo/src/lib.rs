//! GeoIP for Usher: which country an address is in, with a database that updates while Usher runs, and
//! the show's Geo policy applied to it.
//!
//! # Layout
//! - [`db`]: one MaxMind DB file (GeoLite2/GeoIP2 Country or City, DB-IP), checked through at load.
//! - [`live`]: the database in service, swapped atomically; lookups never wait.
//! - [`update`]: file watching, uploads and the download schedule, each checked before the swap.
//! - [`policy`]: a show's Geo policy applied to an address and its country.
//! - [`proxy`]: the client's address behind trusted proxies.

pub mod db;
pub mod live;
pub mod policy;
pub mod proxy;
pub mod update;
