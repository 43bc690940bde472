//! A show's Geo policy applied to one client address and what the database says about it.

use std::net::IpAddr;

use ipnet::IpNet;
use usher_core::geo::{Country, GeoPolicy, UnknownAddresses};

/// What the database said about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The database names this country.
    Country(Country),
    /// The database has no country for the address.
    Unknown,
    /// No database is loaded.
    NoDatabase,
}

impl Lookup {
    /// The country, when known.
    pub fn country(self) -> Option<Country> {
        match self {
            Self::Country(c) => Some(c),
            Self::Unknown | Self::NoDatabase => None,
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It lies in a denied range (the most specific range holding it).
    DeniedRange(IpNet),
    /// Its country is denied, or not among the allowed ones.
    Country(Country),
    /// The database does not know its country and the policy denies unknown addresses.
    Unknown,
}

/// The outcome of a policy for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted.
    Allowed,
    /// Refused.
    Refused(Refusal),
    /// The policy names countries but no database is loaded, so it cannot decide.
    Undecided,
}

/// The most specific range of `ranges` that holds `ip`, with its prefix length.
fn best_match(ranges: &[IpNet], ip: IpAddr) -> Option<(u8, IpNet)> {
    ranges
        .iter()
        .filter(|r| r.contains(&ip))
        .map(|r| (r.prefix_len(), *r))
        .max_by_key(|(len, _)| *len)
}

/// Applies `policy` to `ip`, whose country the database gave as `lookup`.
///
/// Ranges decide first: the longest prefix holding the address wins, and between an allowed and a
/// denied range of the same length the denied one does. Then the country: a denied country is refused;
/// when `allow_countries` is not empty, every country outside it is refused. An address without a country
/// gets the policy's `unknown`.
pub fn decide(policy: &GeoPolicy, ip: IpAddr, lookup: Lookup) -> Verdict {
    let ip = ip.to_canonical();
    let allow = best_match(&policy.allow_ranges, ip);
    let deny = best_match(&policy.deny_ranges, ip);
    match (allow, deny) {
        (Some((a, _)), Some((d, net))) if d >= a => {
            return Verdict::Refused(Refusal::DeniedRange(net));
        }
        (None, Some((_, net))) => return Verdict::Refused(Refusal::DeniedRange(net)),
        (Some(_), _) => return Verdict::Allowed,
        (None, None) => {}
    }
    if !policy.needs_database() {
        return Verdict::Allowed;
    }
    match lookup {
        Lookup::NoDatabase => Verdict::Undecided,
        Lookup::Unknown => match policy.unknown {
            UnknownAddresses::Allow => Verdict::Allowed,
            UnknownAddresses::Deny => Verdict::Refused(Refusal::Unknown),
        },
        Lookup::Country(c) => {
            if policy.deny_countries.contains(&c)
                || (!policy.allow_countries.is_empty() && !policy.allow_countries.contains(&c))
            {
                Verdict::Refused(Refusal::Country(c))
            } else {
                Verdict::Allowed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use usher_core::geo::GeoPolicySpec;

    use super::*;

    fn policy(f: impl FnOnce(&mut GeoPolicySpec)) -> GeoPolicy {
        let mut s = GeoPolicySpec::default();
        f(&mut s);
        s.validate().expect("valid policy")
    }

    fn c(code: &str) -> Lookup {
        Lookup::Country(Country::parse(code).unwrap())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allowed_countries_admit_only_themselves() {
        let p = policy(|s| s.allow_countries = vec!["DE".into(), "AT".into()]);
        assert_eq!(decide(&p, ip("192.0.2.1"), c("DE")), Verdict::Allowed);
        assert_eq!(
            decide(&p, ip("192.0.2.1"), c("FR")),
            Verdict::Refused(Refusal::Country(Country::parse("FR").unwrap()))
        );
        assert_eq!(
            decide(&p, ip("192.0.2.1"), Lookup::Unknown),
            Verdict::Allowed
        );
        assert_eq!(
            decide(&p, ip("192.0.2.1"), Lookup::NoDatabase),
            Verdict::Undecided
        );
    }

    #[test]
    fn denied_countries_and_unknown_addresses() {
        let p = policy(|s| {
            s.deny_countries = vec!["RU".into()];
            s.unknown = UnknownAddresses::Deny;
        });
        assert_eq!(decide(&p, ip("192.0.2.1"), c("DE")), Verdict::Allowed);
        assert!(matches!(
            decide(&p, ip("192.0.2.1"), c("RU")),
            Verdict::Refused(Refusal::Country(_))
        ));
        assert_eq!(
            decide(&p, ip("192.0.2.1"), Lookup::Unknown),
            Verdict::Refused(Refusal::Unknown)
        );
    }

    #[test]
    fn ranges_win_over_countries_and_the_longest_prefix_wins() {
        let p = policy(|s| {
            s.allow_countries = vec!["DE".into()];
            s.allow_ranges = vec!["198.51.100.0/24".into(), "2001:db8::/32".into()];
            s.deny_ranges = vec![
                "198.51.100.128/25".into(),
                "192.0.2.0/24".into(),
                "2001:db8:1::/48".into(),
            ];
        });
        // an allowed range admits a country that is not allowed
        assert_eq!(decide(&p, ip("198.51.100.1"), c("FR")), Verdict::Allowed);
        // a more specific denied range inside it refuses
        assert!(
            matches!(decide(&p, ip("198.51.100.200"), c("DE")), Verdict::Refused(Refusal::DeniedRange(n)) if n.to_string() == "198.51.100.128/25")
        );
        // a denied range refuses an allowed country
        assert!(matches!(
            decide(&p, ip("192.0.2.9"), c("DE")),
            Verdict::Refused(Refusal::DeniedRange(_))
        ));
        // IPv6 the same way
        assert_eq!(decide(&p, ip("2001:db8:2::1"), c("US")), Verdict::Allowed);
        assert!(matches!(
            decide(&p, ip("2001:db8:1::1"), c("DE")),
            Verdict::Refused(Refusal::DeniedRange(_))
        ));
        // ranges decide without a database
        assert_eq!(
            decide(&p, ip("198.51.100.1"), Lookup::NoDatabase),
            Verdict::Allowed
        );
        // an IPv4-mapped IPv6 address is its IPv4 address
        assert!(matches!(
            decide(&p, ip("::ffff:192.0.2.9"), c("DE")),
            Verdict::Refused(Refusal::DeniedRange(_))
        ));
    }

    #[test]
    fn equal_prefixes_deny() {
        let mut p = policy(|s| s.allow_ranges = vec!["192.0.2.0/24".into()]);
        p.deny_ranges = vec!["192.0.2.0/24".parse().unwrap()];
        assert!(matches!(
            decide(&p, ip("192.0.2.1"), Lookup::NoDatabase),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn an_open_policy_needs_no_database() {
        let p = GeoPolicy::default();
        assert_eq!(
            decide(&p, ip("192.0.2.1"), Lookup::NoDatabase),
            Verdict::Allowed
        );
    }
}
