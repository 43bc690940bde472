//! Usher's own media grant: a short-lived, HMAC-signed permission for one session to fetch the files under
//! one path prefix from Usher's origin, from the network of the address it was issued to.
//!
//! Text form (one URL path segment, so relative playlist URIs inherit it):
//! `base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload)))` with
//! `payload = "2|" session "|" expiry-unix-seconds "|" prefix "|" address "|" bits` for a grant bound to
//! the client's network (`203.0.113.7|24`: any address of 203.0.113.0/24; bits 0: any address, the
//! address is only where it was issued), or the earlier `payload = "1|" session "|" expiry "|" prefix`
//! for a grant that carries no address. The prefix is relative, ends with `/`, and names the show's
//! stream folder (`demo/`); a grant covers the files under that folder only, never a sibling whose
//! name merely starts the same (`demoX/`).
//!
//! Both forms are verified: format 1 is what nodes of earlier releases sign (a rolling upgrade has both
//! side by side for one grant lifetime) and what this one signs when address binding is off.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::UnixMs;
use crate::ids::SessionId;

/// Longest grant text accepted before any decoding.
pub const MAX_GRANT_LEN: usize = 600;

/// What a grant allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The session it was issued to.
    pub session: SessionId,
    /// When it stops being valid (whole seconds).
    pub expires_at: UnixMs,
    /// The path prefix it covers, relative, ending with `/`.
    pub prefix: String,
    /// The client's network it is bound to; `None`: any address (format 1, which carries no address).
    pub client: Option<ClientNetwork>,
}

/// The network a grant is bound to: the address it was issued to, and how many leading bits of it a
/// request's address must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNetwork {
    /// The address the grant was issued to (an IPv4-mapped IPv6 address is kept as its IPv4 address).
    pub address: IpAddr,
    /// The prefix length, at most 32 for IPv4 and 128 for IPv6; 0 binds no network (any address).
    pub bits: u8,
}

impl ClientNetwork {
    /// The network of `bits` leading bits around `address` (IPv4-mapped IPv6 addresses count as IPv4;
    /// `bits` beyond the family's length mean the exact address).
    pub fn new(address: IpAddr, bits: u8) -> Self {
        let address = address.to_canonical();
        Self {
            address,
            bits: bits.min(max_bits(address)),
        }
    }

    /// Whether `ip` lies in the network (always, for 0 bits; never, for an address of the other family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.bits == 0 {
            return true;
        }
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The length of an address of `ip`'s family, in bits.
fn max_bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// Why a grant is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not of the grant's shape.
    #[error("malformed grant")]
    Malformed,
    /// The signature does not match (tampered, or another key).
    #[error("bad grant signature")]
    BadSignature,
    /// Past its expiry.
    #[error("grant expired")]
    Expired,
    /// The requested path is outside the grant's prefix.
    #[error("path outside the grant's prefix")]
    WrongPath,
}

/// Signs grants with one key and checks them against a key set: the current key, and while a rotation
/// is under way the previous one, so grants signed before the rotation keep working until they lapse.
#[derive(Clone)]
pub struct GrantSigner {
    mac: Hmac<Sha256>,
    previous: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantSigner(<key>)")
    }
}

impl GrantSigner {
    /// A signer with `key`.
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
            previous: None,
        }
    }

    /// The same signer, also accepting grants signed with `previous` (never signing with it).
    #[must_use]
    pub fn with_previous(mut self, previous: &[u8]) -> Self {
        self.previous =
            Some(Hmac::<Sha256>::new_from_slice(previous).expect("HMAC takes keys of any length"));
        self
    }

    /// The grant's text form: format 2 when it is bound to a client network, else format 1.
    pub fn sign(&self, grant: &Grant) -> String {
        let (session, exp, prefix) = (
            &grant.session,
            grant.expires_at.0.div_euclid(1000),
            &grant.prefix,
        );
        let payload = match grant.client {
            Some(ClientNetwork { address, bits }) => {
                format!("2|{session}|{exp}|{prefix}|{address}|{bits}")
            }
            None => format!("1|{session}|{exp}|{prefix}"),
        };
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Checks the signature only, and returns the grant whatever its expiry: for the key endpoint, which
    /// checks that the grant's session holds its seat now (a native player holds the key URIs of a VOD
    /// playlist for the whole show, longer than a grant lives).
    ///
    /// # Errors
    /// [`GrantError`] saying why it is refused.
    pub fn verify_issued(&self, text: &str) -> Result<Grant, GrantError> {
        self.verify(text, UnixMs(i64::MIN))
    }

    /// Checks signature and expiry, and returns the grant.
    ///
    /// # Errors
    /// [`GrantError`] saying why it is refused.
    pub fn verify(&self, text: &str, now: UnixMs) -> Result<Grant, GrantError> {
        if text.len() > MAX_GRANT_LEN {
            return Err(GrantError::Malformed);
        }
        let (payload_b64, sig_b64) = text.split_once('.').ok_or(GrantError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| GrantError::Malformed)?;
        let signed_by = |key: &Hmac<Sha256>| {
            let mut mac = key.clone();
            mac.update(payload_b64.as_bytes());
            mac.verify_slice(&sig).is_ok()
        };
        if !signed_by(&self.mac) && !self.previous.as_ref().is_some_and(signed_by) {
            return Err(GrantError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| GrantError::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| GrantError::Malformed)?;
        let mut parts = payload.splitn(4, '|');
        let (Some(version), Some(session), Some(exp), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GrantError::Malformed);
        };
        let (prefix, client) = match version {
            "1" => (rest, None),
            // the address and its bits hold no `|`, so they are read from the right
            "2" => {
                let mut tail = rest.rsplitn(3, '|');
                let (Some(bits), Some(address), Some(prefix)) =
                    (tail.next(), tail.next(), tail.next())
                else {
                    return Err(GrantError::Malformed);
                };
                let address: IpAddr = address.parse().map_err(|_| GrantError::Malformed)?;
                let bits: u8 = bits.parse().map_err(|_| GrantError::Malformed)?;
                if bits > max_bits(address) || address.to_canonical() != address {
                    return Err(GrantError::Malformed);
                }
                (prefix, Some(ClientNetwork { address, bits }))
            }
            _ => return Err(GrantError::Malformed),
        };
        let session = SessionId::parse(session).map_err(|_| GrantError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| GrantError::Malformed)?;
        let expires_at = UnixMs(exp.saturating_mul(1000));
        if expires_at <= now {
            return Err(GrantError::Expired);
        }
        Ok(Grant {
            session,
            expires_at,
            prefix: prefix.to_owned(),
            client,
        })
    }
}

impl Grant {
    /// Checks that `path` (relative, already normalised) lies under the grant's prefix.
    ///
    /// # Errors
    /// [`GrantError::WrongPath`] otherwise.
    pub fn covers(&self, path: &str) -> Result<(), GrantError> {
        if self.prefix.ends_with('/') && path.starts_with(&self.prefix) {
            Ok(())
        } else {
            Err(GrantError::WrongPath)
        }
    }

    /// Whether a request from `ip` may use the grant: it lies in the grant's network (any address for a
    /// grant without one, or bound with 0 bits).
    pub fn admits_address(&self, ip: IpAddr) -> bool {
        self.client.is_none_or(|net| net.contains(ip))
    }

    /// Whether `ip` is another address than the one the grant was issued to (the origin then applies the
    /// show's Geo policy to it); `false` for a grant that carries no address.
    pub fn issued_elsewhere(&self, ip: IpAddr) -> bool {
        self.client
            .is_some_and(|net| net.address != ip.to_canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            session: SessionId::generate(),
            expires_at: UnixMs(2_000_000_000_000),
            prefix: "demo/".into(),
            client: None,
        }
    }

    fn bound(address: &str, bits: u8) -> Grant {
        Grant {
            client: Some(ClientNetwork::new(address.parse().unwrap(), bits)),
            ..grant()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `payload` signed with `s`'s key, as `sign` would frame it.
    fn frame(s: &GrantSigner, payload: &str) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = s.mac.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = GrantSigner::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let g = grant();
        let text = s.sign(&g);
        assert_eq!(s.verify(&text, UnixMs(0)), Ok(g.clone()));
        assert_eq!(
            s.verify(&text, UnixMs(2_000_000_000_000)),
            Err(GrantError::Expired)
        );
        let other = GrantSigner::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2");
        assert_eq!(
            other.verify(&text, UnixMs(0)),
            Err(GrantError::BadSignature)
        );
        let mut tampered = text.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.verify(std::str::from_utf8(&tampered).unwrap(), UnixMs(0)),
            Err(GrantError::BadSignature)
        );
        assert_eq!(s.verify("nodot", UnixMs(0)), Err(GrantError::Malformed));
        assert_eq!(
            s.verify(&"a".repeat(700), UnixMs(0)),
            Err(GrantError::Malformed)
        );
        assert!(g.covers("demo/360p/seg_001.ts").is_ok());
        assert_eq!(
            g.covers("demoX/360p/seg_001.ts"),
            Err(GrantError::WrongPath)
        );
        assert_eq!(g.covers("other/x.ts"), Err(GrantError::WrongPath));
    }

    #[test]
    fn during_a_rotation_grants_of_the_previous_key_still_verify_and_new_ones_use_the_current() {
        let (old, new) = (
            b"old-grant-key-0123456789abcdef0123".as_slice(),
            b"new-grant-key-0123456789abcdef0123".as_slice(),
        );
        let before = GrantSigner::new(old).sign(&grant());
        let rotating = GrantSigner::new(new).with_previous(old);
        assert!(rotating.verify(&before, UnixMs(0)).is_ok(), "issued before");
        let after = rotating.sign(&grant());
        assert!(GrantSigner::new(new).verify(&after, UnixMs(0)).is_ok());
        assert_eq!(
            GrantSigner::new(old).verify(&after, UnixMs(0)),
            Err(GrantError::BadSignature),
            "signed with the current key only"
        );
        // once the previous key is dropped, its grants are refused
        assert_eq!(
            GrantSigner::new(new).verify(&before, UnixMs(0)),
            Err(GrantError::BadSignature)
        );
        let third = GrantSigner::new(b"third-key-0123456789abcdef0123456").sign(&grant());
        assert_eq!(
            rotating.verify(&third, UnixMs(0)),
            Err(GrantError::BadSignature)
        );
    }

    #[test]
    fn a_bound_grant_round_trips_in_format_2() {
        let s = GrantSigner::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        for g in [
            bound("203.0.113.7", 24),
            bound("2001:db8:85a3::8a2e:370:7334", 64),
            bound("203.0.113.7", 0),
        ] {
            let text = s.sign(&g);
            let payload = URL_SAFE_NO_PAD
                .decode(text.split_once('.').unwrap().0)
                .unwrap();
            assert!(payload.starts_with(b"2|"), "{g:?}");
            assert_eq!(s.verify(&text, UnixMs(0)), Ok(g.clone()));
        }
        // without an address: format 1, as nodes of earlier releases sign and verify it
        let text = s.sign(&grant());
        let payload = URL_SAFE_NO_PAD
            .decode(text.split_once('.').unwrap().0)
            .unwrap();
        assert!(payload.starts_with(b"1|"));
    }

    #[test]
    fn format_2_known_answer() {
        // Computed independently (Python hmac/base64 over the documented format):
        // payload "2|s_0123456789abcdef0123456789abcdef|1700003600|demo/|203.0.113.7|24", key "k1"×16.
        let want = "MnxzXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmfDE3MDAwMDM2MDB8ZGVtby98MjAzLjAuMTEzLjd8MjQ.Wz7nvLfd2uV4RwKj350Fxyab14YhtohUb81KlUZTq-s";
        let s = GrantSigner::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let g = Grant {
            session: SessionId::parse("s_0123456789abcdef0123456789abcdef").unwrap(),
            expires_at: UnixMs(1_700_003_600_000),
            prefix: "demo/".into(),
            client: Some(ClientNetwork::new(ip("203.0.113.7"), 24)),
        };
        assert_eq!(s.sign(&g), want);
    }

    #[test]
    fn malformed_format_2_payloads_are_refused() {
        let s = GrantSigner::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let head = "s_0123456789abcdef0123456789abcdef|1700003600|demo/";
        for payload in [
            format!("2|{head}|203.0.113.7|33"),
            format!("2|{head}|2001:db8::1|129"),
            format!("2|{head}|203.0.113.7|-1"),
            format!("2|{head}|203.0.113.7|"),
            format!("2|{head}|203.0.113|24"),
            format!("2|{head}|24"),
            format!("2|{head}"),
            // an IPv4-mapped address is written as its IPv4 address
            format!("2|{head}|::ffff:203.0.113.7|24"),
            format!("3|{head}|203.0.113.7|24"),
        ] {
            assert_eq!(
                s.verify(&frame(&s, &payload), UnixMs(0)),
                Err(GrantError::Malformed),
                "{payload}"
            );
        }
        let g = s
            .verify(&frame(&s, &format!("2|{head}|203.0.113.7|24")), UnixMs(0))
            .unwrap();
        assert_eq!(g.prefix, "demo/");
        assert_eq!(g.client, Some(ClientNetwork::new(ip("203.0.113.7"), 24)));
    }

    #[test]
    fn an_ipv4_slash_24_admits_its_network_only() {
        let g = bound("203.0.113.7", 24);
        for inside in [
            "203.0.113.7",
            "203.0.113.0",
            "203.0.113.255",
            "::ffff:203.0.113.99",
        ] {
            assert!(g.admits_address(ip(inside)), "{inside}");
        }
        for outside in [
            "203.0.114.7",
            "203.0.112.255",
            "10.0.0.1",
            "2001:db8::1",
            "::ffff:203.0.114.7",
        ] {
            assert!(!g.admits_address(ip(outside)), "{outside}");
        }
        assert!(!g.issued_elsewhere(ip("203.0.113.7")));
        assert!(!g.issued_elsewhere(ip("::ffff:203.0.113.7")));
        assert!(g.issued_elsewhere(ip("203.0.113.8")));
    }

    #[test]
    fn an_ipv4_slash_32_admits_the_exact_address_only() {
        let g = bound("203.0.113.7", 32);
        assert!(g.admits_address(ip("203.0.113.7")));
        assert!(g.admits_address(ip("::ffff:203.0.113.7")));
        assert!(!g.admits_address(ip("203.0.113.6")));
        assert!(!g.admits_address(ip("203.0.113.8")));
        // more bits than the family has: the exact address
        assert_eq!(bound("203.0.113.7", 64).client.unwrap().bits, 32);
    }

    #[test]
    fn an_ipv6_slash_64_admits_its_network_only() {
        let g = bound("2001:db8:85a3:1:8a2e:370:7334:1", 64);
        for inside in ["2001:db8:85a3:1::1", "2001:db8:85a3:1:ffff:ffff:ffff:ffff"] {
            assert!(g.admits_address(ip(inside)), "{inside}");
        }
        for outside in [
            "2001:db8:85a3:2::1",
            "2001:db8:85a3::1",
            "203.0.113.7",
            "::1",
        ] {
            assert!(!g.admits_address(ip(outside)), "{outside}");
        }
        let exact = bound("2001:db8::7", 128);
        assert!(exact.admits_address(ip("2001:db8::7")));
        assert!(!exact.admits_address(ip("2001:db8::8")));
    }

    #[test]
    fn off_admits_every_address() {
        for g in [grant(), bound("203.0.113.7", 0), bound("2001:db8::7", 0)] {
            for any in ["203.0.113.7", "198.51.100.1", "2001:db8::1", "::1"] {
                assert!(g.admits_address(ip(any)), "{g:?} {any}");
            }
        }
        // a grant without an address was issued nowhere in particular: the origin re-checks nothing
        assert!(!grant().issued_elsewhere(ip("198.51.100.1")));
        // bound with 0 bits it still knows where it was issued
        assert!(bound("203.0.113.7", 0).issued_elsewhere(ip("198.51.100.1")));
    }
}
