//! The services: what Usher does, with no HTTP in it. Handlers, console pages and CLI commands parse their
//! input, call one function here and render its answer; the functions take the state they need and return
//! the domain's [`Error`].
//!
//! - [`viewer`]: admit, heartbeat (through the API or a steering reload), the store-outage grace.
//! - [`content_keys`]: content keys wrapped under the key-encryption key; registering one, and handing it
//!   to a player whose session holds its seat now.
//! - [`delivery`]: the CDN pool, a session's pathways and grants, the one signing entry point.
//! - [`auth`]: API keys and console users as one [`auth::Caller`]; passwords, console sessions, CSRF,
//!   login throttling, roles.
//! - [`idempotency`]: safe retries of POSTs sent with an `Idempotency-Key` (a claim, the sealed answer).
//! - [`tv`]: TV sign-in codes (RFC 8628's device authorization): a TV shows a code, a phone holding the
//!   ticket approves it, the TV's poll takes the ticket.
//! - [`seal`]: AES-256-GCM sealing of what the store keeps for a moment and must not hold in clear.
//! - [`passwords`]: argon2 hashing and checking, a bounded number at once.
//! - [`audit`]: the audit log every change writes to.
//! - [`privacy`]: the retention rules of tickets' personal data (`[privacy]`), applied in the background.
//! - [`webhooks`]: webhook endpoints, the events the services emit into the store's outbox, the
//!   delivery log and re-send.
//! - [`admin`]: the admin actions (shows, tickets, CDNs, API keys, users, sessions, GeoIP, audit log,
//!   dashboard), shared by the API, the console and the CLI.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod caller;
pub mod content_keys;
pub mod delivery;
pub mod error;
pub mod idempotency;
pub mod passwords;
pub mod privacy;
pub mod seal;
pub mod tv;
pub mod viewer;
pub mod webhooks;

pub use caller::{Caller, Principal};
pub use error::{Code, Error, Record, Result};

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The services know nothing of HTTP: no axum type, no status, no JSON answer, no import of the
    /// HTTP adapter (comments may name them).
    #[test]
    fn no_http_in_the_services() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.join("service.rs")];
        sources(&root.join("service"), &mut files);
        assert!(files.len() > 10, "{files:?}");
        let forbidden = [
            "axum",
            "StatusCode",
            "IntoResponse",
            "Json<",
            "Json(",
            "crate::http",
        ];
        let mut found = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for word in forbidden {
                    if line.contains(word) {
                        found.push(format!("{}:{}: {word}", file.display(), n + 1));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "HTTP in the services:\n{}",
            found.join("\n")
        );
    }
}
