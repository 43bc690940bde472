//! The personal data a ticket's usage keeps, and the two rules that limit it: retention (client
//! addresses truncated to their network or dropped after a while, devices, countries and addresses
//! dropped after a longer while) and erasure (everything personal about one ticket at once).
//!
//! Both are pure rules over [`Usage`] and [`TicketLeases`]; a backend applies them atomically per ticket
//! (the embedded store under its lock, Redis in a script), as it applies the lease rules. What stays is
//! what the seller needs for accounting: the ticket's status and times, its first play, last visit,
//! session and clone counts.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::clock::UnixMs;
use crate::lease::{AddressSeen, EndReason, TicketLeases, Usage};

/// The network an IPv4 address is truncated to: its /24 (the last byte names the host).
pub const V4_PREFIX: u8 = 24;
/// The network an IPv6 address is truncated to: its /48 (a site's prefix; the /64 below it is one
/// subscriber's home).
pub const V6_PREFIX: u8 = 48;

/// What becomes of a client address once it is older than the address retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressAging {
    /// Kept as its network ([`V4_PREFIX`], [`V6_PREFIX`]); addresses of one network merge into one entry.
    Truncate,
    /// Dropped.
    Drop,
}

/// The retention rules at one instant, as cut-off instants (the caller takes them from the store's
/// clock and the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Client addresses last seen before this are truncated or dropped (`addresses`).
    pub addresses_before: UnixMs,
    /// Truncate or drop.
    pub addresses: AddressAging,
    /// Devices (ids and labels), countries and addresses (truncated or not) last seen before this are
    /// dropped; `None`: they are kept while the ticket exists.
    pub usage_before: Option<UnixMs>,
}

/// The network of `address` ([`V4_PREFIX`] or [`V6_PREFIX`] bits): its address with the host bits
/// cleared, and the prefix length. An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`) is an IPv4
/// client and is truncated as one.
pub fn network_of(address: IpAddr) -> (IpAddr, u8) {
    let v4 = |a: Ipv4Addr| {
        let [a, b, c, _] = a.octets();
        (IpAddr::V4(Ipv4Addr::new(a, b, c, 0)), V4_PREFIX)
    };
    match address {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(m) => v4(m),
            None => {
                let s = a.segments();
                (
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0)),
                    V6_PREFIX,
                )
            }
        },
    }
}

impl AddressSeen {
    /// The address as people read it: exact, or its network in CIDR notation once the retention rules
    /// truncated it (`198.51.100.0/24`).
    pub fn text(&self) -> String {
        match self.prefix {
            Some(bits) => format!("{}/{bits}", self.address),
            None => self.address.to_string(),
        }
    }
}

impl Usage {
    /// Whether [`Usage::apply_retention`] would change anything (cheap: no allocation).
    pub fn needs_retention(&self, r: &Retention) -> bool {
        let old = |last_seen: UnixMs| r.usage_before.is_some_and(|b| last_seen < b);
        self.devices.iter().any(|d| old(d.last_seen))
            || self.countries.iter().any(|c| old(c.last_seen))
            || self.addresses.iter().any(|a| {
                old(a.last_seen) || (a.prefix.is_none() && a.last_seen < r.addresses_before)
            })
    }

    /// Applies the retention rules; returns whether anything changed.
    ///
    /// 1. Each exact address last seen before `addresses_before` becomes its network (or goes, with
    ///    [`AddressAging::Drop`]); an entry of a network already listed merges with it (first seen the
    ///    earlier, last seen the later) and takes the later one's place, so the list stays "most recent
    ///    last". The Lua retention step of usher-store gets the list this computes.
    /// 2. Every device, country and address last seen before `usage_before` goes.
    ///
    /// The counts and times (`first_play_at`, `last_seen_at`, `sessions`, `clones`) stay: they are the
    /// seller's accounting, not a person's data.
    pub fn apply_retention(&mut self, r: &Retention) -> bool {
        if !self.needs_retention(r) {
            return false;
        }
        let mut out: Vec<AddressSeen> = Vec::with_capacity(self.addresses.len());
        for mut a in std::mem::take(&mut self.addresses) {
            if a.prefix.is_none() && a.last_seen < r.addresses_before {
                match r.addresses {
                    AddressAging::Drop => continue,
                    AddressAging::Truncate => {
                        let (net, bits) = network_of(a.address);
                        a.address = net;
                        a.prefix = Some(bits);
                    }
                }
            }
            if a.prefix.is_some()
                && let Some(i) = out
                    .iter()
                    .position(|o| o.prefix == a.prefix && o.address == a.address)
            {
                let o = out.remove(i);
                a.first_seen = a.first_seen.min(o.first_seen);
                a.last_seen = a.last_seen.max(o.last_seen);
            }
            out.push(a);
        }
        self.addresses = out;
        if let Some(before) = r.usage_before {
            self.devices.retain(|d| d.last_seen >= before);
            self.countries.retain(|c| c.last_seen >= before);
            self.addresses.retain(|a| a.last_seen >= before);
        }
        true
    }
}

/// What an erasure removed from one ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    /// Client addresses (and networks) removed from the usage.
    pub addresses: u64,
    /// Countries removed from the usage.
    pub countries: u64,
    /// Devices (ids and labels) removed from the usage.
    pub devices: u64,
    /// Sessions, live or recently ended, whose device label (or the country that ended them) was
    /// blanked.
    pub sessions: u64,
    /// Sessions still holding a seat: they keep playing (see [`TicketLeases::erase_personal_data`]).
    pub live_sessions: u64,
}

impl TicketLeases {
    /// Erases the personal data of this ticket: the usage's devices, countries and addresses, the
    /// device labels of its sessions (live and recently ended: "superseded by …"), and the country
    /// that ended a session (`geo_blocked`). Returns what was there; a second call erases nothing.
    ///
    /// Live sessions keep their seat and play on: the buyer paid for the show, and an erasure request is
    /// no reason to cut it. Their lease keeps the device id (a random id the player holds, without which
    /// the seat could not tell its holder from another device) until the lease ends; what the player
    /// does from now on is recorded afresh, under the retention rules. The counts and times stay
    /// (the seller's accounting).
    pub fn erase_personal_data(&mut self) -> Erased {
        let u = &mut self.usage;
        let mut erased = Erased {
            addresses: u.addresses.len() as u64,
            countries: u.countries.len() as u64,
            devices: u.devices.len() as u64,
            sessions: 0,
            live_sessions: self.leases.len() as u64,
        };
        u.addresses = Vec::new();
        u.countries = Vec::new();
        u.devices = Vec::new();
        for l in &mut self.leases {
            if !l.device_label.is_empty() {
                l.device_label = String::new();
                erased.sessions += 1;
            }
        }
        for e in &mut self.ended {
            match &mut e.reason {
                EndReason::Superseded { by_device, .. } if !by_device.is_empty() => {
                    by_device.clear();
                    erased.sessions += 1;
                }
                EndReason::GeoBlocked { country, .. } if country.is_some() => {
                    *country = None;
                    erased.sessions += 1;
                }
                _ => {}
            }
        }
        erased
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Country;
    use crate::lease::{CountrySeen, DeviceSeen};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn seen(addr: &str, first: i64, last: i64) -> AddressSeen {
        AddressSeen {
            address: ip(addr),
            first_seen: UnixMs(first),
            last_seen: UnixMs(last),
            prefix: None,
        }
    }

    #[test]
    fn ipv4_is_truncated_to_its_24() {
        assert_eq!(network_of(ip("198.51.100.77")), (ip("198.51.100.0"), 24));
        assert_eq!(network_of(ip("10.0.0.0")), (ip("10.0.0.0"), 24));
        assert_eq!(network_of(ip("255.255.255.255")), (ip("255.255.255.0"), 24));
    }

    #[test]
    fn ipv6_is_truncated_to_its_48() {
        assert_eq!(
            network_of(ip("2001:db8:abcd:12:3456::1")),
            (ip("2001:db8:abcd::"), 48)
        );
        assert_eq!(network_of(ip("::1")), (ip("::"), 48));
        assert_eq!(
            network_of(ip("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff")),
            (ip("2001:db8:abcd::"), 48)
        );
        // an IPv4 client seen through an IPv6 socket is an IPv4 client
        assert_eq!(network_of(ip("::ffff:192.0.2.9")), (ip("192.0.2.0"), 24));
    }

    fn retention(addresses_before: i64, usage_before: Option<i64>) -> Retention {
        Retention {
            addresses_before: UnixMs(addresses_before),
            addresses: AddressAging::Truncate,
            usage_before: usage_before.map(UnixMs),
        }
    }

    #[test]
    fn old_addresses_become_networks_and_merge() {
        let mut u = Usage {
            addresses: vec![
                seen("198.51.100.7", 10, 10),
                seen("2001:db8:1:2::5", 20, 20),
                seen("198.51.100.200", 5, 30),
                seen("198.51.100.9", 200, 200),
            ],
            ..Usage::default()
        };
        assert!(u.apply_retention(&retention(100, None)));
        let got: Vec<(String, Option<u8>, i64, i64)> = u
            .addresses
            .iter()
            .map(|a| {
                (
                    a.address.to_string(),
                    a.prefix,
                    a.first_seen.0,
                    a.last_seen.0,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("2001:db8:1::".into(), Some(48), 20, 20),
                ("198.51.100.0".into(), Some(24), 5, 30),
                // recent: exact, and apart from the network it lies in
                ("198.51.100.9".into(), None, 200, 200),
            ]
        );
        // a second pass changes nothing
        let before = u.clone();
        assert!(!u.apply_retention(&retention(100, None)));
        assert_eq!(u, before);
    }

    #[test]
    fn drop_removes_old_addresses_and_usage_retention_removes_the_rest() {
        let mut u = Usage {
            addresses: vec![seen("192.0.2.1", 10, 10), seen("192.0.2.2", 150, 150)],
            countries: vec![
                CountrySeen {
                    country: Country::parse("FR").unwrap(),
                    first_seen: UnixMs(1),
                    last_seen: UnixMs(40),
                },
                CountrySeen {
                    country: Country::parse("DE").unwrap(),
                    first_seen: UnixMs(1),
                    last_seen: UnixMs(300),
                },
            ],
            devices: vec![DeviceSeen {
                device_id: crate::ids::DeviceId::parse("device-0001").unwrap(),
                label: "Firefox".into(),
                first_seen: UnixMs(1),
                last_seen: UnixMs(49),
            }],
            sessions: 3,
            first_play_at: Some(UnixMs(1)),
            ..Usage::default()
        };
        let r = Retention {
            addresses: AddressAging::Drop,
            ..retention(100, Some(50))
        };
        assert!(u.apply_retention(&r));
        assert_eq!(u.addresses.len(), 1);
        assert_eq!(u.addresses[0].address, ip("192.0.2.2"));
        assert_eq!(u.countries.len(), 1);
        assert!(u.devices.is_empty());
        assert_eq!((u.sessions, u.first_play_at), (3, Some(UnixMs(1))));
    }

    #[test]
    fn erasure_keeps_the_counts_and_is_idempotent() {
        let mut t = TicketLeases::default();
        t.usage.sessions = 2;
        t.usage.addresses.push(seen("192.0.2.1", 1, 2));
        t.usage.devices.push(DeviceSeen {
            device_id: crate::ids::DeviceId::parse("device-0001").unwrap(),
            label: "Firefox".into(),
            first_seen: UnixMs(1),
            last_seen: UnixMs(2),
        });
        t.ended.push_back(crate::lease::EndedSession {
            session_id: crate::ids::SessionId::generate(),
            reason: EndReason::Superseded {
                by_device: "Chrome".into(),
                at: UnixMs(2),
            },
        });
        let e = t.erase_personal_data();
        assert_eq!(
            e,
            Erased {
                addresses: 1,
                countries: 0,
                devices: 1,
                sessions: 1,
                live_sessions: 0
            }
        );
        assert!(t.usage.addresses.is_empty() && t.usage.devices.is_empty());
        assert_eq!(t.usage.sessions, 2);
        assert_eq!(t.erase_personal_data(), Erased::default());
    }
}
