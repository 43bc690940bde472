//! What to sign and what a viewer gets back.
//!
//! Times are whole Unix seconds, given by the caller: nothing in this crate reads a clock, so the same request
//! always signs to the same bytes (which is what lets `usher sign-url` be checked against vendor tools).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The object a viewer fetches first, as a full URL or as an absolute path.
///
/// Schemes that sign whole URLs (CloudFront, Google) need [`Resource::Url`]; the others sign the path and keep
/// whatever origin the URL names (or give a path-only URL when given a path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// `http(s)://host[:port]/path[?query]`, already percent-encoded as it goes on the wire.
    Url(String),
    /// `/path[?query]`, already percent-encoded as it goes on the wire.
    Path(String),
}

/// One signing request: what, for how long, and bound to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRequest {
    /// The object the viewer fetches first (for HLS, the playlist).
    pub resource: Resource,
    /// The path prefix the permission covers (for HLS, the stream's folder, ending with `/`), or a full URL
    /// prefix. `None`: only [`SignRequest::resource`] itself.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Not valid before this Unix second (only some schemes can say so).
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// Not valid from this Unix second on.
    pub expires_at: i64,
    /// The viewer's address, for schemes that bind one.
    #[serde(default)]
    pub client_ip: Option<IpAddr>,
    /// Bind the network of this many leading bits around [`SignRequest::client_ip`] rather than what the
    /// scheme binds of an address by itself (see [`AddressBinding`]); a scheme that cannot express that
    /// network refuses the request.
    #[serde(default)]
    pub client_network_bits: Option<u8>,
    /// The viewer's session, for schemes that bind one.
    #[serde(default)]
    pub session_id: Option<String>,
}

impl SignRequest {
    /// A request for `path` (absolute, percent-encoded) until `expires_at`.
    pub fn path(path: impl Into<String>, expires_at: i64) -> Self {
        Self::new(Resource::Path(path.into()), expires_at)
    }

    /// A request for `url` (absolute, percent-encoded) until `expires_at`.
    pub fn url(url: impl Into<String>, expires_at: i64) -> Self {
        Self::new(Resource::Url(url.into()), expires_at)
    }

    fn new(resource: Resource, expires_at: i64) -> Self {
        Self {
            resource,
            prefix: None,
            starts_at: None,
            expires_at,
            client_ip: None,
            client_network_bits: None,
            session_id: None,
        }
    }

    /// Covers every object under `prefix` rather than the one resource.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Not valid before `starts_at`.
    #[must_use]
    pub fn starting_at(mut self, starts_at: i64) -> Self {
        self.starts_at = Some(starts_at);
        self
    }

    /// Bound to the viewer's address.
    #[must_use]
    pub fn for_client(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// Bound to the network of `bits` leading bits around the viewer's address `ip`.
    #[must_use]
    pub fn for_client_network(mut self, ip: IpAddr, bits: u8) -> Self {
        self.client_ip = Some(ip);
        self.client_network_bits = Some(bits);
        self
    }

    /// Bound to the viewer's session.
    #[must_use]
    pub fn for_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }
}

/// What a viewer gets: the URL to fetch, plus any cookies to hold and headers to send with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    /// The URL to fetch (signed itself when the scheme delivers in the URL; plain when cookies or headers
    /// carry the signature).
    pub url: String,
    /// Cookies the viewer must hold (one `Set-Cookie` each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<Cookie>,
    /// Headers the viewer must send.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
}

impl Signed {
    pub(crate) fn url(url: String) -> Self {
        Self {
            url,
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }
}

/// A cookie and the attributes to set it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cookie {
    /// Its name.
    pub name: String,
    /// Its value, exactly as the CDN expects it (not further encoded).
    pub value: String,
    /// `Domain=`, when the CDN's host is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// `Path=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `Secure` (set for `https` URLs).
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
}

impl Cookie {
    pub(crate) fn new(name: &str, value: String, origin: &str) -> Self {
        let host = origin
            .split_once("://")
            .map(|(_, h)| h.split(':').next().unwrap_or(h))
            .filter(|h| !h.is_empty());
        Self {
            name: name.to_owned(),
            value,
            domain: host.map(str::to_owned),
            path: Some("/".to_owned()),
            secure: origin.starts_with("https://"),
            http_only: true,
        }
    }

    /// The `Set-Cookie` header value.
    pub fn set_cookie(&self) -> String {
        let mut out = format!("{}={}", self.name, self.value);
        if let Some(d) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(d);
        }
        if let Some(p) = &self.path {
            out.push_str("; Path=");
            out.push_str(p);
        }
        if self.secure {
            out.push_str("; Secure");
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        out
    }
}

/// A request header the viewer must send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// Which bindings a configured scheme can carry, so a caller can leave out what it cannot (each scheme
/// refuses a request carrying a binding it cannot express rather than silently dropping it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// [`SignRequest::session_id`].
    pub session: bool,
    /// What it binds of an IPv4 viewer's address ([`SignRequest::client_ip`]).
    pub client_v4: AddressBinding,
    /// What it binds of an IPv6 viewer's address.
    pub client_v6: AddressBinding,
    /// The configuration cannot sign without the viewer's address (an nginx expression with
    /// `$remote_addr`).
    pub client_ip_required: bool,
    /// [`SignRequest::starts_at`].
    pub starts_at: bool,
    /// [`SignRequest::prefix`].
    pub prefix: bool,
}

impl Capabilities {
    /// Whether it can bind an address at all ([`SignRequest::client_ip`]).
    pub fn client_ip(&self) -> bool {
        self.client_v4 != AddressBinding::None || self.client_v6 != AddressBinding::None
    }

    /// What it binds of `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn address_binding(&self, ip: IpAddr) -> AddressBinding {
        if ip.to_canonical().is_ipv4() {
            self.client_v4
        } else {
            self.client_v6
        }
    }
}

/// What a scheme binds of a viewer's address of one family: what an edge then lets through is a network
/// around the address the URL was signed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressBinding {
    /// Nothing: the scheme carries no address of this family (or the vendor advises against it).
    None,
    /// The network of this fixed prefix length around the address: the exact address (32, 128), or
    /// Bunny's IPv6 /64.
    Fixed(u8),
    /// A network of any prefix length ([`SignRequest::for_client_network`]), e.g. CloudFront's IPv4
    /// `AWS:SourceIp` CIDR.
    Network,
}
