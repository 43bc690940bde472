//! Geo words of the domain: [`Country`] codes and a show's [`GeoPolicy`], validated on write.
//!
//! Evaluating a policy against a client address and a GeoIP database lives in `usher-geo`; here are only
//! the values an admin writes and the store keeps.

use std::fmt;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::validation::ValidationError;

/// ISO 3166-1 alpha-2 codes officially assigned (from Debian's iso-codes), plus `XK` (Kosovo), which
/// GeoIP databases use.
pub(crate) const ASSIGNED: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Most countries a policy list may name.
pub const MAX_POLICY_COUNTRIES: usize = 300;
/// Most IP ranges a policy list may name.
pub const MAX_POLICY_RANGES: usize = 1000;

/// A two-letter country code, upper case (`DE`, `US`).
///
/// [`Country::parse`] accepts only assigned ISO 3166-1 alpha-2 codes (what an admin writes);
/// [`Country::from_database`] accepts any two ASCII letters, because GeoIP databases also use a few
/// reserved codes (`EU`, `AP`) that no policy names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses an assigned ISO 3166-1 alpha-2 code, in either case (`de` becomes `DE`).
    ///
    /// # Errors
    /// A message saying what a code must look like.
    pub fn parse(s: &str) -> Result<Self, String> {
        let c = Self::from_database(s).ok_or_else(|| {
            format!("`{s}` is not an ISO 3166-1 alpha-2 country code such as DE or US")
        })?;
        if ASSIGNED.binary_search(&c.as_str()).is_err() {
            return Err(format!(
                "`{s}` is not an assigned ISO 3166-1 alpha-2 country code"
            ));
        }
        Ok(c)
    }

    /// A code as a GeoIP database gives it: two ASCII letters, upper-cased; `None` otherwise.
    pub fn from_database(s: &str) -> Option<Self> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // both bytes are ASCII letters by construction
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl utoipa::PartialSchema for Country {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Z]{2}$"))
            .description(Some("An ISO 3166-1 alpha-2 country code (`DE`, `US`)."))
            .into()
    }
}

impl ToSchema for Country {}

impl Serialize for Country {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_database(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a country code")))
    }
}

/// What addresses without a known country get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownAddresses {
    /// They are admitted (default).
    #[default]
    Allow,
    /// They are refused.
    Deny,
}

/// A show's Geo policy as an admin writes it (the `geo` member of a show); unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeoPolicySpec {
    /// When not empty, only these countries are admitted (assigned ISO 3166-1 alpha-2 codes, either case).
    #[serde(default)]
    #[schema(max_items = 300)]
    pub allow_countries: Vec<String>,
    /// These countries are refused.
    #[serde(default)]
    #[schema(max_items = 300)]
    pub deny_countries: Vec<String>,
    /// Addresses in these ranges (CIDR with zero host bits, or one address) are admitted whatever their
    /// country.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub allow_ranges: Vec<String>,
    /// Addresses in these ranges are refused whatever their country.
    #[serde(default)]
    #[schema(max_items = 1000)]
    pub deny_ranges: Vec<String>,
    /// `allow` (default) or `deny` addresses whose country the database does not know.
    #[serde(default)]
    pub unknown: UnknownAddresses,
}

/// A show's validated Geo policy. The default admits everyone.
///
/// Evaluation (in `usher-geo`): a range that holds the address decides first (the longest prefix wins;
/// between an allow and a deny range of the same length, deny); then the country: denied countries are
/// refused, and when `allow_countries` is not empty every other country is refused; an address without a
/// country gets `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct GeoPolicy {
    /// When not empty, only these countries are admitted.
    pub allow_countries: Vec<Country>,
    /// These countries are refused.
    pub deny_countries: Vec<Country>,
    /// Ranges admitted whatever their country.
    #[schema(value_type = Vec<String>)]
    pub allow_ranges: Vec<IpNet>,
    /// Ranges refused whatever their country.
    #[schema(value_type = Vec<String>)]
    pub deny_ranges: Vec<IpNet>,
    /// What addresses without a known country get.
    pub unknown: UnknownAddresses,
}

impl GeoPolicy {
    /// Whether the policy can refuse anyone.
    pub fn is_restrictive(&self) -> bool {
        !self.allow_countries.is_empty()
            || !self.deny_countries.is_empty()
            || !self.deny_ranges.is_empty()
            || self.unknown == UnknownAddresses::Deny
    }

    /// Whether deciding needs a GeoIP database (the policy names countries or refuses unknown addresses).
    pub fn needs_database(&self) -> bool {
        !self.allow_countries.is_empty()
            || !self.deny_countries.is_empty()
            || self.unknown == UnknownAddresses::Deny
    }
}

fn countries(field: &'static str, list: &[String]) -> Result<Vec<Country>, ValidationError> {
    if list.len() > MAX_POLICY_COUNTRIES {
        return Err(ValidationError::new(
            field,
            format!("must name at most {MAX_POLICY_COUNTRIES} countries"),
        ));
    }
    let mut out: Vec<Country> = Vec::with_capacity(list.len());
    for s in list {
        let c = Country::parse(s).map_err(|m| ValidationError::new(field, m))?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.sort();
    Ok(out)
}

/// Parses a range: CIDR notation (`10.0.0.0/8`, `2001:db8::/32`) or one address (a /32 or /128).
/// Host bits must be zero, so `10.0.0.1/8` is refused rather than silently widened.
fn range(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = s
        .parse()
        .map_err(|_| format!("`{s}` is not a CIDR range such as 192.0.2.0/24 or 2001:db8::/32"))?;
    if net.trunc() != net {
        return Err(format!(
            "`{s}` has bits set after the prefix; did you mean {}?",
            net.trunc()
        ));
    }
    Ok(net)
}

fn ranges(field: &'static str, list: &[String]) -> Result<Vec<IpNet>, ValidationError> {
    if list.len() > MAX_POLICY_RANGES {
        return Err(ValidationError::new(
            field,
            format!("must name at most {MAX_POLICY_RANGES} ranges"),
        ));
    }
    let mut out: Vec<IpNet> = Vec::with_capacity(list.len());
    for s in list {
        let net = range(s).map_err(|m| ValidationError::new(field, m))?;
        if !out.contains(&net) {
            out.push(net);
        }
    }
    Ok(out)
}

impl GeoPolicySpec {
    /// Validates the spec: assigned ISO 3166-1 alpha-2 codes, CIDR ranges, no country both allowed and
    /// denied, no range both allowed and denied.
    ///
    /// # Errors
    /// The first [`ValidationError`] found, naming the field (`geo.allow_countries`, …).
    pub fn validate(self) -> Result<GeoPolicy, ValidationError> {
        let allow_countries = countries("geo.allow_countries", &self.allow_countries)?;
        let deny_countries = countries("geo.deny_countries", &self.deny_countries)?;
        if let Some(c) = allow_countries.iter().find(|c| deny_countries.contains(c)) {
            return Err(ValidationError::new(
                "geo.deny_countries",
                format!("{c} is also in geo.allow_countries"),
            ));
        }
        let allow_ranges = ranges("geo.allow_ranges", &self.allow_ranges)?;
        let deny_ranges = ranges("geo.deny_ranges", &self.deny_ranges)?;
        if let Some(r) = allow_ranges.iter().find(|r| deny_ranges.contains(r)) {
            return Err(ValidationError::new(
                "geo.deny_ranges",
                format!("{r} is also in geo.allow_ranges"),
            ));
        }
        Ok(GeoPolicy {
            allow_countries,
            deny_countries,
            allow_ranges,
            deny_ranges,
            unknown: self.unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_list_is_sorted_for_binary_search() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ASSIGNED.len(), 250);
    }

    #[test]
    fn countries_parse_strictly_and_database_codes_leniently() {
        assert_eq!(Country::parse("de").unwrap().as_str(), "DE");
        assert_eq!(Country::parse("XK").unwrap().as_str(), "XK");
        assert!(Country::parse("ZZ").is_err());
        assert!(Country::parse("EU").is_err());
        assert!(Country::parse("DEU").is_err());
        assert!(Country::parse("D1").is_err());
        assert!(Country::parse("").is_err());
        assert_eq!(Country::from_database("EU").unwrap().as_str(), "EU");
        assert!(Country::from_database("É1").is_none());
    }

    fn spec(f: impl FnOnce(&mut GeoPolicySpec)) -> Result<GeoPolicy, ValidationError> {
        let mut s = GeoPolicySpec::default();
        f(&mut s);
        s.validate()
    }

    #[test]
    fn policies_are_validated_on_write() {
        let p = spec(|s| {
            s.allow_countries = vec!["fr".into(), "DE".into(), "de".into()];
            s.allow_ranges = vec!["192.0.2.7".into(), "2001:db8::/32".into()];
            s.deny_ranges = vec!["198.51.100.0/24".into()];
            s.unknown = UnknownAddresses::Deny;
        })
        .unwrap();
        let codes: Vec<&str> = p.allow_countries.iter().map(Country::as_str).collect();
        assert_eq!(codes, ["DE", "FR"]);
        assert_eq!(p.allow_ranges[0].to_string(), "192.0.2.7/32");
        assert!(p.is_restrictive() && p.needs_database());

        let e = spec(|s| s.deny_countries = vec!["XX".into()]).unwrap_err();
        assert_eq!(e.field, "geo.deny_countries");
        let e = spec(|s| s.allow_ranges = vec!["10.0.0.1/8".into()]).unwrap_err();
        assert!(e.message.contains("did you mean 10.0.0.0/8"), "{e}");
        let e = spec(|s| s.deny_ranges = vec!["10.0.0.0/33".into()]).unwrap_err();
        assert_eq!(e.field, "geo.deny_ranges");
        let e = spec(|s| {
            s.allow_countries = vec!["DE".into()];
            s.deny_countries = vec!["de".into()];
        })
        .unwrap_err();
        assert!(e.message.contains("DE is also"), "{e}");
        let e = spec(|s| s.allow_ranges = vec!["not an address".into()]).unwrap_err();
        assert_eq!(e.field, "geo.allow_ranges");
    }

    #[test]
    fn the_default_policy_admits_everyone() {
        let p = GeoPolicy::default();
        assert!(!p.is_restrictive() && !p.needs_database());
        let only_ranges = spec(|s| s.allow_ranges = vec!["192.0.2.0/24".into()]).unwrap();
        assert!(!only_ranges.is_restrictive() && !only_ranges.needs_database());
    }

    #[test]
    fn a_stored_policy_round_trips_and_old_shows_without_one_read() {
        let p = spec(|s| {
            s.deny_countries = vec!["RU".into()];
            s.deny_ranges = vec!["2001:db8::/48".into()];
        })
        .unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<GeoPolicy>(&json).unwrap(), p);
        assert_eq!(
            serde_json::from_str::<GeoPolicy>("{}").unwrap(),
            GeoPolicy::default()
        );
    }
}
