//! Akamai EdgeAuth 2.0 (Token Authentication 2.0): ACL and URL tokens, delivered as a query parameter, a
//! cookie or a header (default name `__token__`).
//!
//! Followed: Akamai's reference libraries `akamai/EdgeAuth-Token-Python` (`akamai/edgeauth/edgeauth.py`,
//! published on PyPI as `akamai-edgeauth`) and `akamai/EdgeAuth-Token-Java`, which implement the token the
//! edge's "Auth Token 2.0 Verification" behaviour checks.
//!
//! Token: the fields `ip`, `st`, `exp`, `acl`, `id`, `data` (those present, in that order) joined by `~`,
//! then `~hmac=` and the lower-case hex HMAC (SHA-256, SHA-1 or MD5) keyed with the hex-decoded key. The HMAC
//! input is the same fields plus, not carried in the token, `url=<path>` for URL tokens and `salt=<salt>`
//! when a salt is configured. Several ACLs are joined by `!`.
//!
//! Without `escape_early` (the default), field values are refused when they hold a character that would
//! need escaping (`~`, `&`, `;`, `,`, `"`, `\`, `#`, spaces, non-ASCII), which keeps every token identical
//! under all the reference libraries. With `escape_early` (for a property whose verification escapes early)
//! this module does what the Python reference library does with `escape_early=True`: `ip`, `id`, `data` and
//! (URL tokens) `url` are escaped as `urllib.parse.quote_plus` does — every byte but letters, digits and
//! `_.-~` as `%xx` in *lower-case* hex, a space as `+` — before they are signed and sent; `acl` and `salt`
//! are not. (Akamai's Java library escapes differently; the edge setting decides which one is right.)

use hmac::{Hmac, Mac};
use md5::Md5;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use sha1::Sha1;
use sha2::Sha256;

use crate::error::SignError;
use crate::request::{Cookie, Header, SignRequest, Signed};
use crate::uri::{Target, append_query, prefix_path};

/// The HMAC's hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// HMAC-SHA256 (the default).
    #[default]
    Sha256,
    /// HMAC-SHA1.
    Sha1,
    /// HMAC-MD5.
    Md5,
}

/// What the token covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// An access-control list of path patterns (`acl=`), carried in the token: one token for a whole
    /// folder, which is what HLS needs.
    #[default]
    Acl,
    /// One URL (`url=` in the HMAC only).
    Url,
}

/// How the viewer presents the token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// `?__token__=…` on the URL (the default).
    #[default]
    Query,
    /// A `__token__` cookie.
    Cookie,
    /// A `__token__` request header.
    Header,
}

/// The token's fields, before signing. Empty optional fields are left out, as the reference libraries do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `ip=`: the viewer's address.
    pub ip: Option<&'a str>,
    /// `st=`: not valid before (Unix seconds).
    pub start: Option<i64>,
    /// `exp=`: not valid from (Unix seconds).
    pub exp: i64,
    /// `acl=`: path patterns joined by `!` (ACL tokens).
    pub acl: Option<&'a str>,
    /// `url=`: the path signed (URL tokens; in the HMAC input only).
    pub url: Option<&'a str>,
    /// `id=`: the session.
    pub id: Option<&'a str>,
    /// `data=`: opaque payload.
    pub data: Option<&'a str>,
    /// `salt=`: a second secret (in the HMAC input only).
    pub salt: Option<&'a str>,
    /// Escape `ip`, `id`, `data` and `url` first, as the Python reference's `escape_early=True` does.
    pub escape_early: bool,
}

/// `urllib.parse.quote_plus(text)` with its `%XX` escapes in lower case: the Python reference library's
/// `_escape_early`.
pub fn escape_early(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

/// Decodes the hex key Akamai's property configuration shows.
///
/// # Errors
/// [`SignError::BadKey`] unless `hex` is a non-empty even-length hex string.
pub fn parse_key(hex: &str) -> Result<Vec<u8>, SignError> {
    let key = hex::decode(hex.trim()).map_err(|_| SignError::BadKey("Akamai keys are hex"))?;
    if key.is_empty() {
        return Err(SignError::BadKey("empty"));
    }
    Ok(key)
}

/// The token text for `fields`, with an HMAC keyed by `key` (already hex-decoded).
///
/// # Errors
/// [`SignError::BadField`] when a field holds a character the token cannot carry, or neither or both of
/// `acl` and `url` are given; [`SignError::BadTimes`] for impossible times.
pub fn token(key: &[u8], algorithm: Algorithm, fields: &Fields<'_>) -> Result<String, SignError> {
    if fields.exp <= 0 {
        return Err(SignError::BadTimes("exp must be after 1970"));
    }
    if let Some(st) = fields.start
        && (st <= 0 || st >= fields.exp)
    {
        return Err(SignError::BadTimes("st must be after 1970 and before exp"));
    }
    if fields.acl.is_some() == fields.url.is_some() {
        return Err(SignError::BadField {
            field: "acl/url",
            reason: "exactly one of acl and url",
        });
    }
    let escaped = |v: Option<&str>| {
        v.map(|v| {
            if fields.escape_early {
                escape_early(v)
            } else {
                v.to_owned()
            }
        })
    };
    let (ip, id, data, url) = (
        escaped(fields.ip),
        escaped(fields.id),
        escaped(fields.data),
        escaped(fields.url),
    );
    let mut token = String::with_capacity(160);
    let mut push = |name: &str, value: &str| {
        if !token.is_empty() {
            token.push('~');
        }
        token.push_str(name);
        token.push('=');
        token.push_str(value);
    };
    if let Some(ip) = &ip {
        check("ip", ip, false)?;
        push("ip", ip);
    }
    if let Some(st) = fields.start {
        push("st", &st.to_string());
    }
    push("exp", &fields.exp.to_string());
    if let Some(acl) = fields.acl {
        check("acl", acl, true)?;
        push("acl", acl);
    }
    if let Some(id) = &id {
        check("id", id, false)?;
        push("id", id);
    }
    if let Some(data) = &data {
        check("data", data, false)?;
        push("data", data);
    }
    let mut input = token.clone();
    if let Some(url) = &url {
        check("url", url, true)?;
        input.push_str("~url=");
        input.push_str(url);
    }
    if let Some(salt) = fields.salt {
        check("salt", salt, false)?;
        input.push_str("~salt=");
        input.push_str(salt);
    }
    let mac = match algorithm {
        Algorithm::Sha256 => hmac_hex::<Hmac<Sha256>>(key, input.as_bytes()),
        Algorithm::Sha1 => hmac_hex::<Hmac<Sha1>>(key, input.as_bytes()),
        Algorithm::Md5 => hmac_hex::<Hmac<Md5>>(key, input.as_bytes()),
    };
    token.push_str("~hmac=");
    token.push_str(&mac);
    Ok(token)
}

fn hmac_hex<M: Mac + hmac::digest::KeyInit>(key: &[u8], input: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <M as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(input);
    hex::encode(mac.finalize().into_bytes())
}

/// Refuses values that would need escaping somewhere between the token and the edge (see the module docs).
fn check(field: &'static str, value: &str, path_like: bool) -> Result<(), SignError> {
    if value.is_empty() {
        return Err(SignError::BadField {
            field,
            reason: "empty",
        });
    }
    let ok = value.bytes().all(|b| {
        b.is_ascii_graphic() && !matches!(b, b'~' | b'&' | b';' | b',' | b'"' | b'\\' | b'#')
    });
    if !ok {
        return Err(SignError::BadField {
            field,
            reason: "only printable ASCII without '~', '&', ';', ',', '\"', '\\', '#' or spaces",
        });
    }
    if !path_like && value.contains('!') {
        return Err(SignError::BadField {
            field,
            reason: "no '!' (the ACL delimiter)",
        });
    }
    Ok(())
}

/// An Akamai EdgeAuth configuration: key material and how tokens are made and delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AkamaiParams {
    /// The token key as Akamai shows it (hex).
    pub key: SecretString,
    /// The HMAC's hash.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// ACL or URL token.
    #[serde(default)]
    pub token: TokenKind,
    /// Query, cookie or header.
    #[serde(default)]
    pub delivery: Delivery,
    /// The query parameter, cookie or header name.
    #[serde(default = "default_token_name")]
    pub token_name: String,
    /// Optional salt, a second secret mixed into the HMAC.
    #[serde(default)]
    pub salt: Option<SecretString>,
    /// Optional `data=` payload.
    #[serde(default)]
    pub data: Option<String>,
    /// ACL patterns added (joined by `!`) after the one derived from the request.
    #[serde(default)]
    pub extra_acls: Vec<String>,
    /// Escape `ip`, `id`, `data` and `url` as the Python reference's `escape_early=True` does (see the
    /// module's documentation).
    #[serde(default)]
    pub escape_early: bool,
}

fn default_token_name() -> String {
    "__token__".to_owned()
}

/// [`AkamaiParams`] with the key decoded, ready to sign many requests.
#[derive(Debug)]
pub struct AkamaiSigner {
    params: AkamaiParams,
    key: SecretSlice<u8>,
}

impl AkamaiSigner {
    /// Checks and decodes the key.
    ///
    /// # Errors
    /// [`SignError::BadKey`] for a key that is not hex; [`SignError::BadField`] for a bad token name.
    pub fn new(params: AkamaiParams) -> Result<Self, SignError> {
        let key = parse_key(params.key.expose_secret())?;
        if params.token_name.is_empty()
            || !params
                .token_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(SignError::BadField {
                field: "token_name",
                reason: "letters, digits, '_' and '-'",
            });
        }
        Ok(Self {
            params,
            key: key.into(),
        })
    }

    /// ACL or URL token.
    pub fn token_kind(&self) -> TokenKind {
        self.params.token
    }

    /// Signs one request.
    ///
    /// # Errors
    /// [`SignError`] for a resource, prefix or field the token cannot carry.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        let target = Target::parse(&req.resource)?;
        let ip = req.client_ip.map(|ip| ip.to_string());
        let path_and_query = target.path_and_query();
        let mut acl = String::new();
        let (acl, url) = match self.params.token {
            TokenKind::Acl => {
                match &req.prefix {
                    Some(p) => {
                        acl.push_str(&prefix_path(p)?);
                        acl.push('*');
                    }
                    None => acl.push_str(&target.path),
                }
                for extra in &self.params.extra_acls {
                    check("acl", extra, true)?;
                    acl.push('!');
                    acl.push_str(extra);
                }
                (Some(acl.as_str()), None)
            }
            TokenKind::Url => {
                if req.prefix.is_some() {
                    return Err(SignError::Unsupported {
                        scheme: "an Akamai URL token",
                        what: "a prefix (use an ACL token)",
                    });
                }
                (None, Some(path_and_query.as_str()))
            }
        };
        let fields = Fields {
            ip: ip.as_deref(),
            start: req.starts_at,
            exp: req.expires_at,
            acl,
            url,
            id: req.session_id.as_deref(),
            data: self.params.data.as_deref(),
            salt: self.params.salt.as_ref().map(|s| s.expose_secret()),
            escape_early: self.params.escape_early,
        };
        let token = token(self.key.expose_secret(), self.params.algorithm, &fields)?;
        let name = &self.params.token_name;
        Ok(match self.params.delivery {
            Delivery::Query => Signed::url(append_query(&target.url(), &format!("{name}={token}"))),
            Delivery::Cookie => Signed {
                url: target.url(),
                cookies: vec![Cookie::new(name, token, &target.origin)],
                headers: Vec::new(),
            },
            Delivery::Header => Signed {
                url: target.url(),
                cookies: Vec::new(),
                headers: vec![Header {
                    name: name.clone(),
                    value: token,
                }],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::vectors;

    // Known answers generated with Akamai's reference implementation, `akamai-edgeauth` from PyPI
    // (akamai/EdgeAuth-Token-Python), by scripts/vendor-vectors.sh into testdata/vectors.json, with the
    // inputs and the call that produced each: Akamai publishes no fixed vectors (its tests run against a live
    // property), so the vendor's code is run instead, at the version pinned in vectors/requirements.txt.
    const KEY: &str = "aabbccddeeff00112233445566778899";

    /// One vector: `EdgeAuth(**edge_auth).generate_acl_token(acl)` or `.generate_url_token(url)`.
    #[derive(Deserialize)]
    struct Vector {
        id: String,
        inputs: Inputs,
        value: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inputs {
        edge_auth: EdgeAuthArgs,
        acl: Option<Acl>,
        url: Option<String>,
    }

    /// `generate_acl_token` takes one ACL or a list it joins with `!`.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Acl {
        One(String),
        Many(Vec<String>),
    }

    /// The `EdgeAuth` constructor's keyword arguments the vectors use.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EdgeAuthArgs {
        key: String,
        algorithm: Option<Algorithm>,
        start_time: Option<i64>,
        end_time: i64,
        ip: Option<String>,
        session_id: Option<String>,
        payload: Option<String>,
        salt: Option<String>,
        escape_early: Option<bool>,
    }

    fn key() -> Vec<u8> {
        parse_key(KEY).unwrap()
    }

    #[test]
    fn tokens_are_the_reference_librarys() {
        for v in vectors::of::<Vector>("akamai") {
            let e = &v.inputs.edge_auth;
            let acl = v.inputs.acl.as_ref().map(|acl| match acl {
                Acl::One(one) => one.clone(),
                Acl::Many(many) => many.join("!"),
            });
            let got = token(
                &parse_key(&e.key).unwrap(),
                e.algorithm.unwrap_or_default(),
                &Fields {
                    ip: e.ip.as_deref(),
                    start: e.start_time,
                    exp: e.end_time,
                    acl: acl.as_deref(),
                    url: v.inputs.url.as_deref(),
                    id: e.session_id.as_deref(),
                    data: e.payload.as_deref(),
                    salt: e.salt.as_deref(),
                    escape_early: e.escape_early.unwrap_or(false),
                },
            );
            assert_eq!(got.as_deref(), Ok(v.value.as_str()), "{}", v.id);
        }
    }

    fn params(delivery: Delivery, token: TokenKind) -> AkamaiParams {
        AkamaiParams {
            key: KEY.into(),
            algorithm: Algorithm::Sha256,
            token,
            delivery,
            token_name: default_token_name(),
            salt: Some("pepper".into()),
            data: None,
            extra_acls: Vec::new(),
            escape_early: false,
        }
    }

    #[test]
    fn acl_token_with_salt_and_session_in_each_delivery() {
        // EdgeAuth(key=KEY, end_time=1700003600, salt="pepper", session_id="abc123")
        //   .generate_acl_token("/demo/*")
        let vector: Vector = vectors::one("akamai/acl_salt_session");
        assert_eq!(vector.inputs.edge_auth.key, KEY);
        let want = vector.value;
        let req = SignRequest::url("https://a.example/demo/master.m3u8", 1_700_003_600)
            .with_prefix("/demo/")
            .for_session("abc123");
        let q = AkamaiSigner::new(params(Delivery::Query, TokenKind::Acl))
            .unwrap()
            .sign(&req)
            .unwrap();
        assert_eq!(
            q.url,
            format!("https://a.example/demo/master.m3u8?__token__={want}")
        );
        let c = AkamaiSigner::new(params(Delivery::Cookie, TokenKind::Acl))
            .unwrap()
            .sign(&req)
            .unwrap();
        assert_eq!(c.url, "https://a.example/demo/master.m3u8");
        assert_eq!(
            c.cookies[0].set_cookie(),
            format!("__token__={want}; Domain=a.example; Path=/; Secure; HttpOnly")
        );
        let h = AkamaiSigner::new(params(Delivery::Header, TokenKind::Acl))
            .unwrap()
            .sign(&req)
            .unwrap();
        assert_eq!(h.headers[0].name, "__token__");
        assert_eq!(h.headers[0].value, want);
    }

    #[test]
    fn escape_early_through_the_signer() {
        // EdgeAuth(key=KEY, end_time=1700003600, session_id="user:1;x y", payload="a&b", escape_early=True)
        //   .generate_acl_token("/demo/*"): the reference library's value, in testdata/vectors.json.
        let v: Vector = vectors::one("akamai/acl_escape_early_session_data");
        assert_eq!(v.inputs.edge_auth.escape_early, Some(true));
        let s = AkamaiSigner::new(AkamaiParams {
            salt: None,
            data: Some("a&b".into()),
            escape_early: true,
            ..params(Delivery::Query, TokenKind::Acl)
        })
        .unwrap();
        let req = SignRequest::path("/demo/master.m3u8", 1_700_003_600)
            .with_prefix("/demo/")
            .for_session("user:1;x y");
        assert_eq!(
            s.sign(&req).unwrap().url,
            format!("/demo/master.m3u8?__token__={}", v.value)
        );
        // without it, the same session is refused rather than signed differently from the edge
        let plain = AkamaiSigner::new(AkamaiParams {
            data: Some("a&b".into()),
            ..params(Delivery::Query, TokenKind::Acl)
        })
        .unwrap();
        assert!(plain.sign(&req).is_err());
        assert_eq!(escape_early("/a b~é!"), "%2fa+b~%c3%a9%21");
        // quote_plus keeps '~', the token's field delimiter: such a value is refused, escaped or not
        let tilde = req.clone().for_session("a~b");
        assert!(s.sign(&tilde).is_err());
    }

    #[test]
    fn refusals() {
        assert!(parse_key("xyz").is_err());
        assert!(parse_key("").is_err());
        let k = key();
        let base = Fields {
            exp: 10,
            acl: Some("/a/*"),
            ..Fields::default()
        };
        for bad in [
            Fields {
                id: Some("a~b"),
                ..base.clone()
            },
            Fields {
                data: Some("a b"),
                ..base.clone()
            },
            Fields {
                acl: Some("/a;b"),
                ..base.clone()
            },
            Fields {
                url: Some("/a"),
                ..base.clone()
            },
            Fields {
                acl: None,
                ..base.clone()
            },
            Fields {
                start: Some(10),
                ..base.clone()
            },
            Fields {
                exp: 0,
                ..base.clone()
            },
        ] {
            assert!(token(&k, Algorithm::Sha256, &bad).is_err(), "{bad:?}");
        }
        let url_signer = AkamaiSigner::new(params(Delivery::Query, TokenKind::Url)).unwrap();
        assert!(
            url_signer
                .sign(&SignRequest::path("/a/b", 10).with_prefix("/a/"))
                .is_err()
        );
        let p = AkamaiParams {
            token_name: "bad name".into(),
            ..params(Delivery::Query, TokenKind::Acl)
        };
        assert!(AkamaiSigner::new(p).is_err());
        // The key never shows in Debug.
        let s = AkamaiSigner::new(params(Delivery::Query, TokenKind::Acl)).unwrap();
        assert!(!format!("{s:?}").contains(KEY));
        assert!(!format!("{s:?}").contains("pepper"));
    }
}
