//! Usher's store backends behind `usher_core::store::Store`, and the contract suite every backend passes.
//!
//! # Layout
//! - [`embedded`]: the default backend, in the process, on local disk (redb for durability, leases in
//!   memory with periodic durable flushes).
//! - [`redis`]: many nodes share one Redis or a Redis Cluster; atomic steps are Lua scripts with Redis's
//!   clock.
//! - [`backup`]: restoring a backup of the embedded store (`Store::backup` takes one; a private
//!   `snapshot` module copies the database for it).
//! - [`contract`]: the store contract suite; each backend's tests instantiate it with
//!   [`store_contract_tests!`].

pub mod backup;
pub mod contract;
mod door;
pub mod embedded;
pub mod redis;
mod snapshot;

pub use embedded::EmbeddedStore;
