//! Google Cloud CDN signed URLs (one URL, or a URL prefix) and signed cookies.
//!
//! Followed: Google Cloud's "Use signed URLs" and "Use signed cookies" guides
//! (<https://cloud.google.com/cdn/docs/using-signed-urls>, <https://cloud.google.com/cdn/docs/using-signed-cookies>)
//! and Google's sample code `GoogleCloudPlatform/python-docs-samples` `cdn/snippets.py` (`sign_url`,
//! `sign_url_prefix`, `sign_cookie`), whose test `cdn/snippets_test.py` supplies the known answers.
//!
//! The key is 16 bytes given in base64url; the signature is HMAC-SHA1 in base64url *with* its `=` padding.
//! - One URL: sign `URL ? Expires=<t>&KeyName=<name>` (`&` when the URL has a query) and append
//!   `&Signature=<sig>`.
//! - URL prefix: sign `URLPrefix=<base64url(prefix)>&Expires=<t>&KeyName=<name>`, append it and
//!   `&Signature=<sig>` to the URL.
//! - Cookie `Cloud-CDN-Cookie`: the prefix policy with `:` separators,
//!   `URLPrefix=…:Expires=…:KeyName=…:Signature=…`.
//!
//! Cloud CDN can bind neither a session nor an address, and has no start time: such requests are refused.
//!
//! The cookie's scope is a setting ([`CookieScope`]), because a browser keeps a cookie only when the host
//! whose answer sets it domain-matches its `Domain`: `Domain=<CDN host>` (the default) works when the CDN's
//! own host sets it; `host_only` leaves `Domain` out, for the same deployment without the CDN host's
//! subdomains; a page on another host of the same site (`watch.example.com` for `cdn.example.com`) can only
//! set a cookie for a parent domain both share (`parent_domain` with `cookie_domain = "example.com"`).

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE};
use base64::engine::{DecodePaddingMode, general_purpose};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use sha1::Sha1;

use crate::error::SignError;
use crate::request::{Cookie, SignRequest, Signed};
use crate::uri::{Target, append_query};

const SCHEME: &str = "Google Cloud CDN";

/// The cookie's name.
pub const COOKIE_NAME: &str = "Cloud-CDN-Cookie";

const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How the viewer presents the signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Query parameters on the URL (the default): one URL, or a URL prefix when the request has a prefix.
    #[default]
    Url,
    /// The `Cloud-CDN-Cookie` cookie for a URL prefix (the request's prefix, else the URL itself).
    Cookie,
}

/// Decodes the base64url key Cloud CDN shows (padding optional).
///
/// # Errors
/// [`SignError::BadKey`] unless it is base64url of at least one byte.
pub fn parse_key(b64: &str) -> Result<Vec<u8>, SignError> {
    let key = URL_SAFE_LENIENT
        .decode(b64.trim())
        .map_err(|_| SignError::BadKey("Cloud CDN keys are base64url"))?;
    if key.is_empty() {
        return Err(SignError::BadKey("empty"));
    }
    Ok(key)
}

fn signature(key: &[u8], input: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(input.as_bytes());
    URL_SAFE.encode(mac.finalize().into_bytes())
}

fn check_key_name(name: &str) -> Result<(), SignError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SignError::BadField {
            field: "key_name",
            reason: "1-63 letters, digits, '-' and '_'",
        });
    }
    Ok(())
}

/// The signed form of one URL.
///
/// # Errors
/// [`SignError::BadField`] for a bad key name.
pub fn sign_url(url: &str, key_name: &str, key: &[u8], expires: i64) -> Result<String, SignError> {
    check_key_name(key_name)?;
    let to_sign = append_query(url, &format!("Expires={expires}&KeyName={key_name}"));
    let sig = signature(key, &to_sign);
    Ok(format!("{to_sign}&Signature={sig}"))
}

/// `url` signed for every URL under `url_prefix`.
///
/// # Errors
/// [`SignError::BadField`] for a bad key name.
pub fn sign_url_prefix(
    url: &str,
    url_prefix: &str,
    key_name: &str,
    key: &[u8],
    expires: i64,
) -> Result<String, SignError> {
    check_key_name(key_name)?;
    let policy = format!(
        "URLPrefix={}&Expires={expires}&KeyName={key_name}",
        general_purpose::URL_SAFE.encode(url_prefix)
    );
    let sig = signature(key, &policy);
    Ok(append_query(url, &format!("{policy}&Signature={sig}")))
}

/// The `Cloud-CDN-Cookie` value for every URL under `url_prefix`.
///
/// # Errors
/// [`SignError::BadField`] for a bad key name.
pub fn cookie_value(
    url_prefix: &str,
    key_name: &str,
    key: &[u8],
    expires: i64,
) -> Result<String, SignError> {
    check_key_name(key_name)?;
    let policy = format!(
        "URLPrefix={}:Expires={expires}:KeyName={key_name}",
        general_purpose::URL_SAFE.encode(url_prefix)
    );
    let sig = signature(key, &policy);
    Ok(format!("{policy}:Signature={sig}"))
}

/// Which hosts the `Cloud-CDN-Cookie` is scoped to (its `Domain` attribute).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieScope {
    /// `Domain=<CDN host>`: the CDN host and its subdomains; set by an answer of the CDN host itself.
    #[default]
    CdnHost,
    /// No `Domain`: the host that set it only.
    HostOnly,
    /// `Domain=<cookie_domain>`: a parent domain of the CDN host, so a page on a sibling host can set it.
    ParentDomain,
}

/// A Cloud CDN configuration: the key and how signatures are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleParams {
    /// The key's name on the backend.
    pub key_name: String,
    /// The key, base64url (16 bytes).
    pub key: SecretString,
    /// URL or cookie.
    #[serde(default)]
    pub delivery: Delivery,
    /// The cookie's scope (cookie delivery).
    #[serde(default)]
    pub cookie_scope: CookieScope,
    /// The parent domain for `cookie_scope = "parent_domain"` (`example.com`).
    #[serde(default)]
    pub cookie_domain: Option<String>,
}

/// [`GoogleParams`] with the key decoded, ready to sign many requests.
#[derive(Debug)]
pub struct GoogleSigner {
    key_name: String,
    key: SecretSlice<u8>,
    delivery: Delivery,
    cookie_scope: CookieScope,
    cookie_domain: Option<String>,
}

/// Whether `domain` is a lower-case DNS name of at least two labels (`example.com`).
fn is_domain(domain: &str) -> bool {
    domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl GoogleSigner {
    /// Checks the key name and decodes the key.
    ///
    /// # Errors
    /// [`SignError::BadKey`] or [`SignError::BadField`].
    pub fn new(params: GoogleParams) -> Result<Self, SignError> {
        check_key_name(&params.key_name)?;
        let key = parse_key(params.key.expose_secret())?;
        match (params.cookie_scope, &params.cookie_domain) {
            (CookieScope::ParentDomain, Some(d)) if is_domain(d) => {}
            (CookieScope::ParentDomain, _) => {
                return Err(SignError::BadField {
                    field: "cookie_domain",
                    reason: "parent_domain needs cookie_domain: a lower-case domain of two labels or more (example.com)",
                });
            }
            (_, Some(_)) => {
                return Err(SignError::BadField {
                    field: "cookie_domain",
                    reason: "only with cookie_scope = parent_domain",
                });
            }
            (_, None) => {}
        }
        Ok(Self {
            key_name: params.key_name,
            key: key.into(),
            delivery: params.delivery,
            cookie_scope: params.cookie_scope,
            cookie_domain: params.cookie_domain,
        })
    }

    /// Signs one request.
    ///
    /// # Errors
    /// [`SignError::UrlRequired`] for a path; [`SignError::Unsupported`] for a session, an address or a start.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        for (set, what) in [
            (req.session_id.is_some(), "a session"),
            (req.client_ip.is_some(), "a client address"),
            (req.starts_at.is_some(), "a start time"),
        ] {
            if set {
                return Err(SignError::Unsupported {
                    scheme: SCHEME,
                    what,
                });
            }
        }
        if req.expires_at <= 0 {
            return Err(SignError::BadTimes("expiry must be after 1970"));
        }
        let target = Target::parse(&req.resource)?;
        if target.origin.is_empty() {
            return Err(SignError::UrlRequired);
        }
        let url = target.url();
        let key = self.key.expose_secret();
        let prefix = req
            .prefix
            .as_deref()
            .map(|p| target.absolute_prefix(p))
            .transpose()?;
        Ok(match (self.delivery, prefix) {
            (Delivery::Url, None) => {
                Signed::url(sign_url(&url, &self.key_name, key, req.expires_at)?)
            }
            (Delivery::Url, Some(prefix)) => Signed::url(sign_url_prefix(
                &url,
                &prefix,
                &self.key_name,
                key,
                req.expires_at,
            )?),
            (Delivery::Cookie, prefix) => {
                let prefix = prefix.unwrap_or_else(|| url.clone());
                let value = cookie_value(&prefix, &self.key_name, key, req.expires_at)?;
                let mut cookie = Cookie::new(COOKIE_NAME, value, &target.origin);
                match self.cookie_scope {
                    CookieScope::CdnHost => {}
                    CookieScope::HostOnly => cookie.domain = None,
                    CookieScope::ParentDomain => {
                        let parent = self.cookie_domain.clone().unwrap_or_default();
                        let host = cookie
                            .domain
                            .as_deref()
                            .unwrap_or_default()
                            .to_ascii_lowercase();
                        if !host.ends_with(&format!(".{parent}")) {
                            return Err(SignError::BadField {
                                field: "cookie_domain",
                                reason: "must be a parent domain of the CDN's host",
                            });
                        }
                        cookie.domain = Some(parent);
                    }
                }
                Signed {
                    cookies: vec![cookie],
                    url,
                    headers: Vec::new(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from Google's sample tests, GoogleCloudPlatform/python-docs-samples `cdn/snippets_test.py`
    // (key name "my-key", key "nZtRohdNF9m3cKM24IcK4w==", expiry 1549751401).
    const KEY: &str = "nZtRohdNF9m3cKM24IcK4w==";
    const EXP: i64 = 1_549_751_401;

    fn key() -> Vec<u8> {
        parse_key(KEY).unwrap()
    }

    #[test]
    fn sign_url_vectors() {
        let k = key();
        assert_eq!(
            sign_url("http://35.186.234.33/index.html", "my-key", &k, EXP).unwrap(),
            "http://35.186.234.33/index.html?Expires=1549751401&KeyName=my-key&Signature=CRFqQnVfFyiUyR63OQf-HRUpIwc="
        );
        assert_eq!(
            sign_url("http://www.example.com/", "my-key", &k, EXP).unwrap(),
            "http://www.example.com/?Expires=1549751401&KeyName=my-key&Signature=OqDUFfHpN5Vxga6r80bhsgxKves="
        );
        assert_eq!(
            sign_url(
                "http://www.example.com/some/path?some=query&another=param",
                "my-key",
                &k,
                EXP
            )
            .unwrap(),
            "http://www.example.com/some/path?some=query&another=param&Expires=1549751401&KeyName=my-key&Signature=9Q9TCxSju8-W5nUkk5CuTrun2_o="
        );
    }

    #[test]
    fn sign_url_prefix_vectors() {
        let k = key();
        assert_eq!(
            sign_url_prefix(
                "http://35.186.234.33/index.html",
                "http://35.186.234.33/",
                "my-key",
                &k,
                EXP
            )
            .unwrap(),
            "http://35.186.234.33/index.html?URLPrefix=aHR0cDovLzM1LjE4Ni4yMzQuMzMv&Expires=1549751401&KeyName=my-key&Signature=j7HYgoQ8dIOVsW3Rw4cpkjWfRMA="
        );
        assert_eq!(
            sign_url_prefix(
                "http://www.example.com/",
                "http://www.example.com/",
                "my-key",
                &k,
                EXP
            )
            .unwrap(),
            "http://www.example.com/?URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS8=&Expires=1549751401&KeyName=my-key&Signature=UdT5nVks6Hh8QFMJI9kmXuXYBk0="
        );
        assert_eq!(
            sign_url_prefix(
                "http://www.example.com/some/path?some=query&another=param",
                "http://www.example.com/some/",
                "my-key",
                &k,
                EXP
            )
            .unwrap(),
            "http://www.example.com/some/path?some=query&another=param&URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9zb21lLw==&Expires=1549751401&KeyName=my-key&Signature=3th4ThmpS95I1TAKYyYSCSq3dnQ="
        );
    }

    #[test]
    fn cookie_vectors() {
        let k = key();
        assert_eq!(
            cookie_value("http://35.186.234.33/index.html", "my-key", &k, EXP).unwrap(),
            "URLPrefix=aHR0cDovLzM1LjE4Ni4yMzQuMzMvaW5kZXguaHRtbA==:Expires=1549751401:KeyName=my-key:Signature=uImwlOBCPs91mlCyG9vyyZRrNWU="
        );
        assert_eq!(
            cookie_value("http://www.example.com/foo/", "my-key", &k, EXP).unwrap(),
            "URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9mb28v:Expires=1549751401:KeyName=my-key:Signature=Z9uYAu73YHioRScZDxnP-TnS274="
        );
    }

    fn signer(delivery: Delivery) -> GoogleSigner {
        GoogleSigner::new(GoogleParams {
            key_name: "my-key".into(),
            key: KEY.into(),
            delivery,
            cookie_scope: CookieScope::CdnHost,
            cookie_domain: None,
        })
        .unwrap()
    }

    #[test]
    fn the_cookies_scope_is_a_setting() {
        let scoped = |scope: serde_json::Value| {
            let mut v = serde_json::json!({"key_name": "my-key", "key": KEY, "delivery": "cookie"});
            v.as_object_mut()
                .unwrap()
                .extend(scope.as_object().unwrap().clone());
            GoogleSigner::new(serde_json::from_value(v).unwrap())
        };
        let req =
            SignRequest::url("http://cdn.example.com/foo/master.m3u8", EXP).with_prefix("/foo/");
        let tail = "; Path=/; HttpOnly";
        let host_only = scoped(serde_json::json!({"cookie_scope": "host_only"})).unwrap();
        let cookie = host_only.sign(&req).unwrap().cookies.remove(0);
        assert_eq!(
            cookie.set_cookie(),
            format!("Cloud-CDN-Cookie={}{tail}", cookie.value)
        );
        let parent = scoped(
            serde_json::json!({"cookie_scope": "parent_domain", "cookie_domain": "example.com"}),
        )
        .unwrap();
        let c = parent.sign(&req).unwrap().cookies[0].set_cookie();
        assert!(c.contains("; Domain=example.com; Path=/"), "{c}");
        // the value is the same whatever the scope
        assert_eq!(
            host_only.sign(&req).unwrap().cookies[0].value,
            parent.sign(&req).unwrap().cookies[0].value
        );
        let elsewhere = SignRequest::url("http://cdn.other.net/foo/a.ts", EXP);
        assert!(parent.sign(&elsewhere).is_err());
        for bad in [
            serde_json::json!({"cookie_scope": "parent_domain"}),
            serde_json::json!({"cookie_scope": "parent_domain", "cookie_domain": "com"}),
            serde_json::json!({"cookie_scope": "parent_domain", "cookie_domain": "Example.com; Secure"}),
            serde_json::json!({"cookie_domain": "example.com"}),
        ] {
            assert!(scoped(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn through_the_signer() {
        let s = signer(Delivery::Url)
            .sign(
                &SignRequest::url(
                    "http://www.example.com/some/path?some=query&another=param",
                    EXP,
                )
                .with_prefix("/some/"),
            )
            .unwrap();
        assert!(
            s.url.ends_with("&Signature=3th4ThmpS95I1TAKYyYSCSq3dnQ="),
            "{}",
            s.url
        );
        let c = signer(Delivery::Cookie)
            .sign(
                &SignRequest::url("http://www.example.com/foo/master.m3u8", EXP)
                    .with_prefix("/foo/"),
            )
            .unwrap();
        assert_eq!(c.url, "http://www.example.com/foo/master.m3u8");
        assert_eq!(
            c.cookies[0].set_cookie(),
            "Cloud-CDN-Cookie=URLPrefix=aHR0cDovL3d3dy5leGFtcGxlLmNvbS9mb28v:Expires=1549751401:KeyName=my-key:Signature=Z9uYAu73YHioRScZDxnP-TnS274=; Domain=www.example.com; Path=/; HttpOnly"
        );
    }

    #[test]
    fn refusals() {
        assert!(parse_key("***").is_err());
        assert!(parse_key("").is_err());
        assert_eq!(parse_key("nZtRohdNF9m3cKM24IcK4w").unwrap(), key());
        let s = signer(Delivery::Url);
        assert_eq!(
            s.sign(&SignRequest::path("/a", EXP)),
            Err(SignError::UrlRequired)
        );
        assert!(
            s.sign(&SignRequest::url("http://h/a", EXP).for_session("x"))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::url("http://h/a", EXP).for_client("192.0.2.1".parse().unwrap()))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::url("http://h/a", EXP).starting_at(1))
                .is_err()
        );
        assert!(sign_url("http://h/", "bad name", &key(), EXP).is_err());
        assert!(!format!("{s:?}").contains("nZtR"));
    }
}
