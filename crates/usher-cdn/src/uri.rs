//! The few URL manipulations signing needs, kept strict: a resource is printable ASCII, already
//! percent-encoded as it goes on the wire, without a fragment. Vendors sign bytes, so nothing here normalises.

use std::net::IpAddr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::error::SignError;
use crate::request::Resource;

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (PHP `rawurlencode`, Go
/// `QueryEscape` with `%20`, Python `quote(safe='')`).
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A resource split into its parts, each as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `scheme://host[:port]`, or empty for a path resource.
    pub(crate) origin: String,
    /// The path, starting with `/`, still percent-encoded.
    pub(crate) path: String,
    /// The query without its `?`, when there is one.
    pub(crate) query: Option<String>,
}

impl Target {
    /// Splits and checks a resource.
    pub(crate) fn parse(resource: &Resource) -> Result<Self, SignError> {
        match resource {
            Resource::Url(url) => Self::parse_url(url),
            Resource::Path(path) => {
                check_chars(path).map_err(SignError::BadPath)?;
                if !path.starts_with('/') {
                    return Err(SignError::BadPath("must start with '/'"));
                }
                let (path, query) = split_query(path);
                Ok(Self {
                    origin: String::new(),
                    path: path.to_owned(),
                    query,
                })
            }
        }
    }

    pub(crate) fn parse_url(url: &str) -> Result<Self, SignError> {
        check_chars(url).map_err(SignError::BadUrl)?;
        let (scheme, rest) = url
            .split_once("://")
            .ok_or(SignError::BadUrl("must be absolute: http(s)://host/path"))?;
        if scheme != "http" && scheme != "https" {
            return Err(SignError::BadUrl("scheme must be http or https"));
        }
        let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let host = &rest[..host_end];
        if host.is_empty() || host.contains('@') {
            return Err(SignError::BadUrl("needs a host (and no user info)"));
        }
        let rest = &rest[host_end..];
        let (path, query) = split_query(rest);
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            origin: format!("{scheme}://{host}"),
            path: path.to_owned(),
            query,
        })
    }

    /// `origin path [?query]`: the URL as given (a path-only URL when there is no origin).
    pub(crate) fn url(&self) -> String {
        let mut out = format!("{}{}", self.origin, self.path);
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }

    /// The path and query, as a server sees them on the request line.
    pub(crate) fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// The absolute URL of a prefix given as a path (resolved against this origin) or as a URL.
    pub(crate) fn absolute_prefix(&self, prefix: &str) -> Result<String, SignError> {
        if prefix.contains("://") {
            check_chars(prefix).map_err(SignError::BadUrl)?;
            Self::parse_url(prefix)?;
            Ok(prefix.to_owned())
        } else {
            check_chars(prefix).map_err(SignError::BadPath)?;
            if !prefix.starts_with('/') {
                return Err(SignError::BadPath("a prefix must start with '/'"));
            }
            if self.origin.is_empty() {
                return Err(SignError::UrlRequired);
            }
            Ok(format!("{}{prefix}", self.origin))
        }
    }
}

/// The path of a prefix given as a path or as a URL.
pub(crate) fn prefix_path(prefix: &str) -> Result<String, SignError> {
    if prefix.contains("://") {
        let t = Target::parse_url(prefix)?;
        Ok(t.path)
    } else {
        check_chars(prefix).map_err(SignError::BadPath)?;
        if !prefix.starts_with('/') {
            return Err(SignError::BadPath("a prefix must start with '/'"));
        }
        Ok(prefix.to_owned())
    }
}

fn split_query(s: &str) -> (&str, Option<String>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (s, None),
    }
}

fn check_chars(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > 8192 {
        return Err("longer than 8192 bytes");
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("only printable ASCII without spaces (percent-encode the rest)");
    }
    if s.contains('#') {
        return Err("no fragment ('#') allowed");
    }
    Ok(())
}

/// `url` with `params` (already encoded, joined by `&`) appended as query.
pub(crate) fn append_query(url: &str, params: &str) -> String {
    let sep = if url.ends_with('?') || url.ends_with('&') {
        ""
    } else if url.contains('?') {
        "&"
    } else {
        "?"
    };
    format!("{url}{sep}{params}")
}

/// Checks a query parameter (or cookie) name a scheme is configured with: letters, digits, `_` and `-`.
pub(crate) fn check_param_name(field: &'static str, name: &str) -> Result<(), SignError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(SignError::BadField {
            field,
            reason: "1 to 64 letters, digits, '_' and '-'",
        });
    }
    Ok(())
}

/// Whether `query` (without its `?`) has a parameter named `name`.
pub(crate) fn query_has(query: Option<&str>, name: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) == name)
    })
}

/// The first address of the network of `bits` leading bits around `ip`, as CIDR names a network
/// (`203.0.113.77`, 24 → `203.0.113.0`); an IPv4-mapped IPv6 address counts as IPv4.
pub(crate) fn network_address(ip: IpAddr, bits: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// An address or CIDR network (`192.0.2.0/24`, `2001:db8::/32`, `192.0.2.7`): the address and its prefix
/// length (the full length for a bare address), or `None`.
pub(crate) fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) && l.len() <= 3 => {
            l.parse::<u8>().ok().filter(|l| *l <= max)?
        }
        Some(_) => return None,
        None => max,
    };
    Some((addr, len))
}

/// Percent-decodes `s` (no `+` rule): what a server calls the decoded path.
pub(crate) fn decode(s: &str) -> Result<String, SignError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| SignError::BadPath("percent-decodes to invalid UTF-8"))
}

/// Percent-encodes everything but the characters in `set`'s complement.
pub(crate) fn encode(s: &str, set: &'static AsciiSet) -> String {
    utf8_percent_encode(s, set).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_refuses() {
        let t = Target::parse(&Resource::Url(
            "https://cdn.example:8443/a/b.m3u8?x=1".into(),
        ))
        .unwrap();
        assert_eq!(t.origin, "https://cdn.example:8443");
        assert_eq!(t.path, "/a/b.m3u8");
        assert_eq!(t.query.as_deref(), Some("x=1"));
        assert_eq!(t.url(), "https://cdn.example:8443/a/b.m3u8?x=1");
        let t = Target::parse(&Resource::Url("http://h".into())).unwrap();
        assert_eq!(t.url(), "http://h/");
        for bad in [
            "ftp://h/x",
            "h/x",
            "http:///x",
            "http://h/a b",
            "http://h/#f",
            "http://u@h/",
            "http://h/é",
        ] {
            assert!(Target::parse(&Resource::Url(bad.into())).is_err(), "{bad}");
        }
        assert!(Target::parse(&Resource::Path("a/b".into())).is_err());
        assert!(Target::parse(&Resource::Path(String::new())).is_err());
        assert_eq!(append_query("/a", "k=v"), "/a?k=v");
        assert_eq!(append_query("/a?x", "k=v"), "/a?x&k=v");
        assert_eq!(append_query("/a?", "k=v"), "/a?k=v");
        assert_eq!(decode("/a%20b").unwrap(), "/a b");
        assert!(decode("/%ff").is_err());
        assert_eq!(encode("/a b,c~", COMPONENT), "%2Fa%20b%2Cc~");
    }
}
