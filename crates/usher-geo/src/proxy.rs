//! The client's address: the socket peer, or what a trusted proxy says in front of it.
//!
//! A forwarding header is believed only when the peer is inside a configured trusted range, and only as
//! far as trusted hops go: the chain is walked from the right (the hop nearest to us), trusted proxies are
//! skipped, and the first address outside the trusted ranges is the client. Anything left of it was written
//! by that client and may be made up, so it is never read. A peer that is not trusted is the client,
//! whatever headers it sends.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// Which header trusted proxies write the chain into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Proxies in `ranges`, writing `header`.
    pub fn new(ranges: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { ranges, header }
    }

    /// Which header is read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|r| r.contains(&ip))
    }

    /// The client address for a request from `peer` carrying `values` of the configured header (each
    /// header line, in order).
    pub fn client<'a>(&self, peer: IpAddr, values: impl IntoIterator<Item = &'a str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = values
            .into_iter()
            .flat_map(|line| line.split(','))
            .map(|hop| match self.header {
                ForwardedHeader::XForwardedFor => parse_addr(hop.trim()),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            })
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                // a trusted proxy wrote something that is no address ("unknown", an obfuscated name):
                // the chain stops at that proxy
                None => return client,
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

/// The `for=` address of one RFC 7239 element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("for") {
            parse_addr(v.trim())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies::new(
            vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8:ffff::/48".parse().unwrap(),
            ],
            header,
        )
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(ForwardedHeader::XForwardedFor);
        assert_eq!(
            p.client(ip("203.0.113.5"), ["192.0.2.1"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), ["192.0.2.1"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_chain_is_walked_from_the_right_past_trusted_hops() {
        let p = proxies(ForwardedHeader::XForwardedFor);
        // the client wrote "198.51.100.9" itself (spoof); the edge proxy appended the real address
        assert_eq!(
            p.client(ip("10.0.0.2"), ["198.51.100.9, 192.0.2.1, 10.1.1.1"]),
            ip("192.0.2.1")
        );
        // several header lines are one list, in order
        assert_eq!(
            p.client(ip("10.0.0.2"), ["198.51.100.9", "192.0.2.1"]),
            ip("192.0.2.1")
        );
        // only trusted hops: the leftmost one is as far as we know
        assert_eq!(
            p.client(ip("10.0.0.2"), ["10.9.9.9, 10.1.1.1"]),
            ip("10.9.9.9")
        );
        // no header: the proxy itself
        assert_eq!(p.client(ip("10.0.0.2"), []), ip("10.0.0.2"));
        // garbage stops the walk at the last trusted hop
        assert_eq!(
            p.client(ip("10.0.0.2"), ["192.0.2.1, unknown"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.client(ip("10.0.0.2"), ["192.0.2.1, 10.3.3.3, nonsense"]),
            ip("10.0.0.2")
        );
        // ports and IPv6, IPv4-mapped peers
        assert_eq!(
            p.client(ip("::ffff:10.0.0.2"), ["192.0.2.1:5555"]),
            ip("192.0.2.1")
        );
        assert_eq!(
            p.client(ip("2001:db8:ffff::1"), ["[2001:db8:1::7]:443"]),
            ip("2001:db8:1::7")
        );
    }

    #[test]
    fn rfc7239_forwarded_is_read_when_configured() {
        let p = proxies(ForwardedHeader::Forwarded);
        let h =
            r#"for=198.51.100.9;proto=https, for="[2001:db8:1::7]:4711";by=10.0.0.9, for=10.4.4.4"#;
        assert_eq!(p.client(ip("10.0.0.2"), [h]), ip("2001:db8:1::7"));
        assert_eq!(
            p.client(ip("10.0.0.2"), ["for=_hidden, for=10.4.4.4"]),
            ip("10.4.4.4")
        );
        assert_eq!(p.client(ip("10.0.0.2"), ["proto=https"]), ip("10.0.0.2"));
        // X-Forwarded-For is then ignored: the caller passes only Forwarded values
    }
}
