//! nginx `secure_link` links in the `secure_link_md5` expression form (the module's second mode, with
//! expiry).
//!
//! Followed: the nginx documentation of `ngx_http_secure_link_module`
//! (<https://nginx.org/en/docs/http/ngx_http_secure_link_module.html>), whose example supplies the known
//! answer, and the module's source (`src/http/modules/ngx_http_secure_link_module.c`).
//!
//! The hash is `base64url(MD5(expression))` without padding, where the expression is the
//! `secure_link_md5` string with its variables substituted. Operators copy that string from their nginx
//! configuration and write `$secret` where the literal secret stands, so the secret is kept as key material
//! rather than in configuration text. Variables understood:
//! - `$secure_link_expires`: the expiry (Unix seconds), also sent in the link;
//! - `$uri` (or the variable named by `path_variable`, for a location regex that captures the path): the
//!   *percent-decoded* path, as nginx's `$uri` is decoded;
//! - `$remote_addr`: the client's address (the TCP peer nginx sees);
//! - the variables named by `session_variable` (for example `$cookie_usher_session`) and `prefix_variable`
//!   (a regex capture holding the folder a link covers), filled as `prefix_holds` says: `path`, the whole
//!   prefix with its slashes (`/d/abc123/`, for a capture like `(?<prefix>/[^/]+/)`), or `folder`, the last
//!   folder's name alone (`abc123`, for a capture like `/(?<folder>[^/]+)/`). nginx gives no error for a
//!   mismatch, only 403s, so say which one the location's regex captures.
//!
//! An expression whose result nginx can never compute the same way is refused with the string that would be
//! hashed (the secret shown as `$secret`): `$uri` in path delivery (nginx's `$uri` then holds the link's own
//! hash), a link outside the prefix it names, a `folder` prefix that names no folder (`/`).
//!
//! Delivery: `?md5=<hash>&expires=<t>` (argument names configurable, to match `secure_link $arg_md5,$arg_expires`)
//! or, in path form, `/<hash>,<t>/path` for a location such as
//! `location ~ ^/(?<secure>[\w-]+,\d+)(?<file>/.+)$ { secure_link $secure; secure_link_md5 "$secure_link_expires$file $secret"; … }`
//! (with `path_variable = "file"`); relative playlist URIs inherit the path form.
//! Cookie delivery: the URL stays plain and a cookie (`cookie_name`, default `usher_link`) carries
//! `<hash>,<expires>`, scoped to the prefix's path, for `secure_link $cookie_usher_link;`.
//! nginx answers a bad hash with 403 and an expired link with 410 (when configured as in its documentation).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::error::SignError;
use crate::request::{AddressBinding, SignRequest, Signed};
use crate::uri::{Target, append_query, decode, prefix_path};

const SCHEME: &str = "nginx secure_link";

/// Where the hash and expiry go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Query arguments (the default).
    #[default]
    Query,
    /// A leading path segment `/<hash>,<expires>`.
    Path,
    /// A cookie holding `<hash>,<expires>` (`secure_link $cookie_<name>;`).
    Cookie,
}

/// What the prefix variable holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefixHolds {
    /// The whole prefix with its slashes, `/d/abc123/` (the default).
    #[default]
    Path,
    /// The last folder's name alone, `abc123`.
    Folder,
}

/// One piece of a parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

/// The values the expression's variables take for one link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values<'a> {
    /// `$secure_link_expires`.
    pub expires: i64,
    /// The decoded path (`$uri` or the configured path variable).
    pub path: Option<&'a str>,
    /// `$remote_addr`.
    pub remote_addr: Option<&'a str>,
    /// The session variable's value.
    pub session: Option<&'a str>,
    /// The prefix variable's value.
    pub prefix: Option<&'a str>,
}

/// A parsed `secure_link_md5` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    parts: Vec<Part>,
    path_variable: String,
    session_variable: Option<String>,
    prefix_variable: Option<String>,
}

impl Expression {
    /// Parses `text` (nginx variable syntax: `$name` or `${name}`).
    ///
    /// # Errors
    /// [`SignError::BadExpression`] for an unknown variable, a missing `$secret` or bad syntax.
    pub fn parse(
        text: &str,
        path_variable: &str,
        session_variable: Option<&str>,
        prefix_variable: Option<&str>,
    ) -> Result<Self, SignError> {
        let bad = |m: &str| SignError::BadExpression(m.to_owned());
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (name, after) = if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').ok_or_else(|| bad("unclosed '${'"))?;
                (&r[..end], &r[end + 1..])
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if name.is_empty() {
                return Err(bad("'$' without a variable name"));
            }
            let known = matches!(name, "secure_link_expires" | "remote_addr" | "secret")
                || name == path_variable
                || Some(name) == session_variable
                || Some(name) == prefix_variable;
            if !known {
                return Err(SignError::BadExpression(format!(
                    "unknown variable ${name} (known: $secure_link_expires, ${path_variable}, $remote_addr, $secret{}{})",
                    session_variable
                        .map(|s| format!(", ${s}"))
                        .unwrap_or_default(),
                    prefix_variable
                        .map(|s| format!(", ${s}"))
                        .unwrap_or_default(),
                )));
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = after;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.iter().any(|p| *p == Part::Var("secret".into())) {
            return Err(bad(
                "the expression must contain $secret where the secret stands",
            ));
        }
        Ok(Self {
            parts,
            path_variable: path_variable.to_owned(),
            session_variable: session_variable.map(str::to_owned),
            prefix_variable: prefix_variable.map(str::to_owned),
        })
    }

    fn uses(&self, name: Option<&str>) -> bool {
        name.is_some_and(|n| {
            self.parts
                .iter()
                .any(|p| matches!(p, Part::Var(v) if v == n))
        })
    }

    /// The string nginx would hash for `values`, with the secret shown as `$secret` and a missing value as
    /// `<name>`: what refusals show so an operator can compare it with the location.
    pub fn preview(&self, values: &Values<'_>) -> String {
        let expires = values.expires.to_string();
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Var(v) if v == "secret" => out.push_str("$secret"),
                Part::Var(v) => {
                    let value = if v == "secure_link_expires" {
                        Some(expires.as_str())
                    } else if v == "remote_addr" {
                        values.remote_addr
                    } else if *v == self.path_variable {
                        values.path
                    } else if Some(v) == self.session_variable.as_ref() {
                        values.session
                    } else {
                        values.prefix
                    };
                    match value {
                        Some(x) => out.push_str(x),
                        None => {
                            out.push('<');
                            out.push_str(v);
                            out.push('>');
                        }
                    }
                }
            }
        }
        out
    }

    /// The link hash: `base64url(MD5(expression))` without padding.
    ///
    /// # Errors
    /// [`SignError::Missing`] when the expression uses a variable `values` lacks.
    pub fn hash(&self, secret: &str, values: &Values<'_>) -> Result<String, SignError> {
        let expires = values.expires.to_string();
        let mut md5 = Md5::new();
        for part in &self.parts {
            let value = match part {
                Part::Literal(l) => l.as_str(),
                Part::Var(v) if v == "secret" => secret,
                Part::Var(v) if v == "secure_link_expires" => &expires,
                Part::Var(v) if v == "remote_addr" => {
                    values.remote_addr.ok_or(SignError::Missing {
                        scheme: SCHEME,
                        what: "a client address ($remote_addr)",
                    })?
                }
                Part::Var(v) if *v == self.path_variable => {
                    values.path.ok_or(SignError::Missing {
                        scheme: SCHEME,
                        what: "a path",
                    })?
                }
                Part::Var(v) if Some(v) == self.session_variable.as_ref() => {
                    values.session.ok_or(SignError::Missing {
                        scheme: SCHEME,
                        what: "a session",
                    })?
                }
                Part::Var(_) => values.prefix.ok_or(SignError::Missing {
                    scheme: SCHEME,
                    what: "a prefix",
                })?,
            };
            md5.update(value.as_bytes());
        }
        Ok(URL_SAFE_NO_PAD.encode(md5.finalize()))
    }
}

/// An nginx `secure_link` configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxParams {
    /// The secret written in nginx's `secure_link_md5` expression.
    pub secret: SecretString,
    /// The `secure_link_md5` expression with `$secret` for the secret.
    #[serde(default = "default_expression")]
    pub expression: String,
    /// Query or path form.
    #[serde(default)]
    pub delivery: Delivery,
    /// The query argument carrying the hash (`secure_link $arg_md5,…`).
    #[serde(default = "default_hash_arg")]
    pub hash_arg: String,
    /// The query argument carrying the expiry.
    #[serde(default = "default_expires_arg")]
    pub expires_arg: String,
    /// The variable holding the decoded path (`uri`, or a regex capture in path form).
    #[serde(default = "default_path_variable")]
    pub path_variable: String,
    /// The variable holding the session (for example `cookie_usher_session`).
    #[serde(default)]
    pub session_variable: Option<String>,
    /// The variable holding the covered folder (a regex capture).
    #[serde(default)]
    pub prefix_variable: Option<String>,
    /// What `prefix_variable` holds: `path` (`/d/abc123/`) or `folder` (`abc123`).
    #[serde(default)]
    pub prefix_holds: PrefixHolds,
    /// The cookie carrying `<hash>,<expires>` in cookie delivery.
    #[serde(default = "default_cookie_name")]
    pub cookie_name: String,
}

fn default_cookie_name() -> String {
    "usher_link".to_owned()
}

/// The default expression: expiry, path and secret (the documentation's example adds `$remote_addr`).
pub fn default_expression() -> String {
    "$secure_link_expires$uri $secret".to_owned()
}

fn default_hash_arg() -> String {
    "md5".to_owned()
}

fn default_expires_arg() -> String {
    "expires".to_owned()
}

fn default_path_variable() -> String {
    "uri".to_owned()
}

/// [`NginxParams`] with the expression parsed, ready to sign many requests.
#[derive(Debug)]
pub struct NginxSigner {
    secret: SecretString,
    expression: Expression,
    delivery: Delivery,
    hash_arg: String,
    expires_arg: String,
    prefix_holds: PrefixHolds,
    cookie_name: String,
}

impl NginxSigner {
    /// Parses the expression and checks the argument names.
    ///
    /// # Errors
    /// [`SignError::BadExpression`], [`SignError::BadKey`] or [`SignError::BadField`].
    pub fn new(params: NginxParams) -> Result<Self, SignError> {
        if params.secret.expose_secret().is_empty() {
            return Err(SignError::BadKey("empty"));
        }
        for (field, name) in [
            ("hash_arg", &params.hash_arg),
            ("expires_arg", &params.expires_arg),
        ] {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(SignError::BadField {
                    field,
                    reason: "letters, digits and '_'",
                });
            }
        }
        crate::uri::check_param_name("cookie_name", &params.cookie_name)?;
        let expression = Expression::parse(
            &params.expression,
            &params.path_variable,
            params.session_variable.as_deref(),
            params.prefix_variable.as_deref(),
        )?;
        if params.delivery == Delivery::Path
            && params.path_variable == "uri"
            && expression.uses(Some("uri"))
        {
            let example = Values {
                expires: 2_000_000_000,
                path: Some("/<hash>,2000000000/demo/master.m3u8"),
                remote_addr: Some("192.0.2.7"),
                session: None,
                prefix: Some("/demo/"),
            };
            return Err(SignError::Unmatchable(format!(
                "in path delivery nginx's $uri holds the link's own hash, so it would hash \"{}\" for /<hash>,2000000000/demo/master.m3u8, which no link can carry: capture the path after the token in the location's regex and name it with path_variable",
                expression.preview(&example)
            )));
        }
        Ok(Self {
            secret: params.secret,
            expression,
            delivery: params.delivery,
            hash_arg: params.hash_arg,
            expires_arg: params.expires_arg,
            prefix_holds: params.prefix_holds,
            cookie_name: params.cookie_name,
        })
    }

    /// The bindings the expression can carry.
    pub fn capabilities(&self) -> crate::Capabilities {
        let e = &self.expression;
        let remote_addr = e.uses(Some("remote_addr"));
        let (client_v4, client_v6) = if remote_addr {
            // `$remote_addr` is the peer's address as text: only the exact address matches
            (AddressBinding::Fixed(32), AddressBinding::Fixed(128))
        } else {
            (AddressBinding::None, AddressBinding::None)
        };
        crate::Capabilities {
            session: e.uses(e.session_variable.as_deref()),
            client_v4,
            client_v6,
            client_ip_required: remote_addr,
            starts_at: false,
            prefix: e.uses(e.prefix_variable.as_deref()),
        }
    }

    /// Signs one request.
    ///
    /// # Errors
    /// [`SignError::Unsupported`] for a start time or a binding the expression lacks;
    /// [`SignError::Missing`] for a variable the request lacks; [`SignError::BadPath`] for paths nginx would
    /// normalise (`//`, `.` or `..` segments) and so never match.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        if req.starts_at.is_some() {
            return Err(SignError::Unsupported {
                scheme: SCHEME,
                what: "a start time",
            });
        }
        if req.expires_at <= 0 {
            return Err(SignError::BadTimes("expiry must be after 1970"));
        }
        let e = &self.expression;
        for (given, var, what) in [
            (
                req.client_ip.is_some(),
                Some("remote_addr"),
                "a client address (no $remote_addr)",
            ),
            (
                req.session_id.is_some(),
                e.session_variable.as_deref(),
                "a session (no session variable)",
            ),
            (
                req.prefix.is_some(),
                e.prefix_variable.as_deref(),
                "a prefix (no prefix variable)",
            ),
        ] {
            if given && !e.uses(var) {
                return Err(SignError::Unsupported {
                    scheme: SCHEME,
                    what,
                });
            }
        }
        let t = Target::parse(&req.resource)?;
        let path = decode(&t.path)?;
        if path.contains("//") || path.split('/').any(|s| s == "." || s == "..") {
            return Err(SignError::BadPath(
                "nginx normalises '//', '.' and '..' in $uri",
            ));
        }
        let prefix = req.prefix.as_deref().map(prefix_path).transpose()?;
        let prefix = prefix.as_deref().map(decode).transpose()?;
        let folder = match (&prefix, self.prefix_holds) {
            (Some(p), PrefixHolds::Folder) => Some(
                p.trim_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        };
        let ip = req.client_ip.map(|ip| ip.to_string());
        let values = Values {
            expires: req.expires_at,
            path: Some(&path),
            remote_addr: ip.as_deref(),
            session: req.session_id.as_deref(),
            prefix: folder.as_deref().or(prefix.as_deref()),
        };
        if let Some(p) = &prefix {
            let dir = if p.ends_with('/') {
                p.clone()
            } else {
                format!("{p}/")
            };
            if !path.starts_with(&dir) {
                return Err(SignError::Unmatchable(format!(
                    "the link {path} lies outside the prefix {p} it would be hashed for (\"{}\"): nginx captures the link's own folder",
                    e.preview(&values)
                )));
            }
            if folder.as_deref().is_some_and(str::is_empty) {
                return Err(SignError::Unmatchable(format!(
                    "prefix_holds = folder needs a prefix that names a folder, not {p}: nginx's capture of a folder name is never empty (\"{}\")",
                    e.preview(&values)
                )));
            }
        }
        let hash = e.hash(self.secret.expose_secret(), &values)?;
        let exp = req.expires_at;
        let url = match self.delivery {
            Delivery::Query => append_query(
                &t.url(),
                &format!("{}={hash}&{}={exp}", self.hash_arg, self.expires_arg),
            ),
            Delivery::Path => {
                let mut u = format!("{}/{hash},{exp}{}", t.origin, t.path);
                if let Some(q) = &t.query {
                    u.push('?');
                    u.push_str(q);
                }
                u
            }
            Delivery::Cookie => {
                let mut cookie = crate::request::Cookie::new(
                    &self.cookie_name,
                    format!("{hash},{exp}"),
                    &t.origin,
                );
                if let Some(p) = &req.prefix {
                    // the cookie goes only with requests under the folder it covers (as sent: encoded)
                    cookie.path = Some(prefix_path(p)?);
                }
                return Ok(Signed {
                    url: t.url(),
                    cookies: vec![cookie],
                    headers: Vec::new(),
                });
            }
        };
        Ok(Signed::url(url))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::vectors;

    fn params(expression: &str) -> NginxParams {
        NginxParams {
            secret: "secret".into(),
            expression: expression.into(),
            delivery: Delivery::Query,
            hash_arg: default_hash_arg(),
            expires_arg: default_expires_arg(),
            path_variable: default_path_variable(),
            session_variable: None,
            prefix_variable: None,
            prefix_holds: PrefixHolds::Path,
            cookie_name: default_cookie_name(),
        }
    }

    /// One vector: the signer's settings and request, and the link a real nginx with that `secure_link_md5`
    /// (the `$secret` replaced by the secret) accepted with 200 and refused with 403 once its hash was
    /// changed: scripts/vendor-vectors.sh starts Debian's nginx for each run and writes only links it
    /// accepted (the nginx `location` is in the vector's `source`).
    #[derive(Deserialize)]
    struct Vector {
        id: String,
        inputs: Inputs,
        value: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inputs {
        secret: String,
        expression: String,
        delivery: Delivery,
        path_variable: Option<String>,
        session_variable: Option<String>,
        prefix_variable: Option<String>,
        prefix_holds: Option<PrefixHolds>,
        path: String,
        expires: i64,
        client_ip: Option<std::net::IpAddr>,
        session: Option<String>,
        prefix: Option<String>,
    }

    fn sign(i: &Inputs) -> Result<Signed, SignError> {
        let signer = NginxSigner::new(NginxParams {
            secret: i.secret.as_str().into(),
            delivery: i.delivery,
            path_variable: i
                .path_variable
                .clone()
                .unwrap_or_else(default_path_variable),
            session_variable: i.session_variable.clone(),
            prefix_variable: i.prefix_variable.clone(),
            prefix_holds: i.prefix_holds.unwrap_or_default(),
            ..params(&i.expression)
        })?;
        let mut req = SignRequest::path(&i.path, i.expires);
        if let Some(ip) = i.client_ip {
            req = req.for_client(ip);
        }
        if let Some(session) = &i.session {
            req = req.for_session(session);
        }
        if let Some(prefix) = &i.prefix {
            req = req.with_prefix(prefix);
        }
        signer.sign(&req)
    }

    #[test]
    fn links_are_what_nginx_accepts() {
        for v in vectors::of::<Vector>("nginx") {
            assert_eq!(sign(&v.inputs).map(|s| s.url), Ok(v.value), "{}", v.id);
        }
    }

    #[test]
    fn documentation_example() {
        // nginx.org, ngx_http_secure_link_module: with `secure_link_md5 "$secure_link_expires$uri$remote_addr
        // secret";` the link "/s/link?md5=_e4Nc3iduzkWRm01TBBNYw&expires=2147483647" restricts "/s/link" to
        // 127.0.0.1 until 2038-01-19. The documentation's value, and nginx accepted it too.
        let v: Vector = vectors::one("nginx/documentation_example");
        assert_eq!(
            v.value,
            "/s/link?md5=_e4Nc3iduzkWRm01TBBNYw&expires=2147483647"
        );
        assert_eq!(
            v.inputs.expression,
            "$secure_link_expires$uri$remote_addr $secret"
        );
        assert_eq!(sign(&v.inputs).unwrap().url, v.value);
    }

    #[test]
    fn the_decoded_uri_is_signed_and_the_encoded_one_sent() {
        // MD5("2000000000/demo/a b.ts secret") for "/demo/a%20b.ts", in query and path form alike.
        let query: Vector = vectors::one("nginx/decoded_uri_query");
        let path: Vector = vectors::one("nginx/path_form");
        assert_eq!(query.inputs.path, "/demo/a%20b.ts");
        let hash = query
            .value
            .strip_prefix("/demo/a%20b.ts?md5=")
            .and_then(|rest| rest.strip_suffix("&expires=2000000000"))
            .unwrap();
        assert_eq!(path.value, format!("/{hash},2000000000/demo/a%20b.ts"));
        // Before the origin as well.
        let p = NginxSigner::new(NginxParams {
            delivery: Delivery::Path,
            path_variable: "file".into(),
            ..params(&path.inputs.expression)
        })
        .unwrap();
        let signed = p
            .sign(&SignRequest::url(
                format!("http://127.0.0.1:8080{}", path.inputs.path),
                path.inputs.expires,
            ))
            .unwrap();
        assert_eq!(signed.url, format!("http://127.0.0.1:8080{}", path.value));
    }

    #[test]
    fn a_prefix_link_needs_its_session() {
        let v: Vector = vectors::one("nginx/session_and_prefix");
        let no_session = Inputs {
            session: None,
            ..v.inputs
        };
        assert!(matches!(sign(&no_session), Err(SignError::Missing { .. })));
    }

    #[test]
    fn what_the_prefix_variable_holds() {
        // prefix_holds = folder: nginx (scripts/vendor-vectors.sh) accepted the link hashed over "demo".
        let v: Vector = vectors::one("nginx/prefix_folder_name");
        assert_eq!(v.inputs.prefix_holds, Some(PrefixHolds::Folder));
        assert_eq!(sign(&v.inputs).unwrap().url, v.value);
        // the same link with the whole prefix hashed (the default) is another link
        let whole = Inputs {
            prefix_holds: None,
            ..v.inputs
        };
        assert_ne!(sign(&whole).unwrap().url, v.value);
    }

    #[test]
    fn links_nginx_could_never_match_are_refused_with_what_would_be_hashed() {
        // $uri in path delivery: nginx's $uri holds the hash itself
        let e = NginxSigner::new(NginxParams {
            delivery: Delivery::Path,
            ..params("$secure_link_expires$uri $secret")
        })
        .unwrap_err();
        assert!(
            matches!(&e, SignError::Unmatchable(m) if m.contains("\"2000000000/<hash>,2000000000/demo/master.m3u8 $secret\"")),
            "{e}"
        );
        let folder = NginxSigner::new(NginxParams {
            secret: "hunter2-nginx".into(),
            prefix_variable: Some("folder".into()),
            prefix_holds: PrefixHolds::Folder,
            ..params("$secure_link_expires$folder $secret")
        })
        .unwrap();
        // a link outside its prefix
        let e = folder
            .sign(&SignRequest::path("/other/a.ts", 2_000_000_000).with_prefix("/demo/"))
            .unwrap_err();
        assert!(
            matches!(&e, SignError::Unmatchable(m) if m.contains("\"2000000000demo $secret\"")),
            "{e}"
        );
        // the root names no folder
        let e = folder
            .sign(&SignRequest::path("/a.ts", 2_000_000_000).with_prefix("/"))
            .unwrap_err();
        assert!(matches!(e, SignError::Unmatchable(_)), "{e}");
        // the secret never shows in a refusal
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn cookie_delivery() {
        let s = NginxSigner::new(NginxParams {
            delivery: Delivery::Cookie,
            prefix_variable: Some("folder".into()),
            prefix_holds: PrefixHolds::Folder,
            ..params("$secure_link_expires$folder $secret")
        })
        .unwrap();
        let signed = s
            .sign(
                &SignRequest::url("https://edge.example/demo/master.m3u8", 2_000_000_000)
                    .with_prefix("/demo/"),
            )
            .unwrap();
        assert_eq!(signed.url, "https://edge.example/demo/master.m3u8");
        // the same hash as the query form's vector (MD5 of "2000000000demo secret"), as `<hash>,<expires>`
        let v: Vector = vectors::one("nginx/prefix_folder_name");
        let hash = v
            .value
            .split("md5=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert_eq!(
            signed.cookies[0].set_cookie(),
            format!(
                "usher_link={hash},2000000000; Domain=edge.example; Path=/demo/; Secure; HttpOnly"
            )
        );
    }

    #[test]
    fn refusals() {
        assert!(NginxSigner::new(params("$secure_link_expires$uri secret")).is_err());
        assert!(NginxSigner::new(params("$secure_link_expires$host $secret")).is_err());
        assert!(NginxSigner::new(params("${uri $secret")).is_err());
        assert!(NginxSigner::new(params("$ $secret")).is_err());
        let s = NginxSigner::new(NginxParams {
            secret: "hunter2-nginx".into(),
            ..params("$secure_link_expires$uri $secret")
        })
        .unwrap();
        assert!(
            s.sign(&SignRequest::path("/a", 10).for_client("127.0.0.1".parse().unwrap()))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::path("/a", 10).for_session("x"))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::path("/a", 10).with_prefix("/"))
                .is_err()
        );
        assert!(s.sign(&SignRequest::path("/a", 10).starting_at(1)).is_err());
        assert!(s.sign(&SignRequest::path("/a/../b", 10)).is_err());
        assert!(s.sign(&SignRequest::path("/a//b", 10)).is_err());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
