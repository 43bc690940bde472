//! The services: what Usher does, with no HTTP in it. Handlers, console pages and CLI commands parse their
//! input, call one function here and render its answer; the functions take the state they need and return
//! the domain's [`Error`].
//!
//! - [`viewer`]: admit, heartbeat (through the API or a steering reload), the store-outage grace.
//! - [`delivery`]: the CDN pool, a session's pathways and grants, the one signing entry point.
//! - [`auth`]: API keys and console users as one [`auth::Caller`]; passwords, console sessions, CSRF,
//!   login throttling, roles.
//! - [`audit`]: the audit log every change writes to.

pub mod audit;
pub mod auth;
pub mod caller;
pub mod delivery;
pub mod error;
pub mod viewer;

pub use caller::{Caller, Principal};
pub use error::{Error, Result};
