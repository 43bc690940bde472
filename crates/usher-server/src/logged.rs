//! What a log line may show of a client: its address only when `log.client_addresses` is on. An address
//! is personal data; the logs keep none unless the operator asks (say, to find who floods the
//! connections). A leaf module, so the connection loop, ingest and telemetry all reach it.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether log lines may name client addresses (`log.client_addresses`), process-wide like the log.
static CLIENT_ADDRESSES: AtomicBool = AtomicBool::new(false);

/// Sets whether log lines name client addresses (`telemetry::init_logging`).
pub fn show_client_addresses(on: bool) {
    CLIENT_ADDRESSES.store(on, Ordering::Relaxed);
}

/// A client's address (a viewer's, an encoder's) as a log line may show it: the address with
/// `log.client_addresses` on, else `withheld`.
pub fn client_address<A: std::fmt::Display>(address: A) -> LoggedAddress<A> {
    LoggedAddress(address)
}

/// See [`client_address`].
#[derive(Debug, Clone, Copy)]
pub struct LoggedAddress<A>(A);

impl<A: std::fmt::Display> std::fmt::Display for LoggedAddress<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if CLIENT_ADDRESSES.load(Ordering::Relaxed) {
            self.0.fmt(f)
        } else {
            f.write_str("withheld")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_are_withheld_unless_configured() {
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_address(ip).to_string(), "withheld");
        show_client_addresses(true);
        assert_eq!(client_address(ip).to_string(), "192.0.2.7");
        show_client_addresses(false);
    }
}
