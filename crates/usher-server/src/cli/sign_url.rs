//! `usher sign-url`: prints exactly what a viewer would get from one CDN signing scheme (the URL, the cookies
//! to set, the headers to send) for a given key, URL or path and times, so an operator can check a CDN's
//! configuration against Usher's signing or against the vendor's own tools.
//!
//! Output is deterministic: the times are arguments (Unix seconds or RFC 3339), never the clock. The
//! arguments are turned into the same tagged [`usher_cdn::Scheme`] configuration the server reads, so this
//! command signs exactly as the delivery code does.
//!
//! With `--cdn <id>` the CDN (scheme and keys) is taken from a running server's pool instead: the server
//! signs with `POST /api/v1/cdns/{id}/sign` (an admin key in `USHER_API_KEY`), so the keys never leave it.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use usher_cdn::{Scheme, SignRequest, Signed};

/// The vendor scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// Akamai EdgeAuth 2.0 token (`--key` is the hex token key).
    Akamai,
    /// Amazon CloudFront signed URL or cookies (`--key-file` is the RSA private key PEM, `--key-pair-id`).
    Cloudfront,
    /// Google Cloud CDN signed URL or cookie (`--key` is the base64url key, `--key-name`).
    Google,
    /// Bunny CDN token (`--key` is the pull zone's token authentication key).
    Bunny,
    /// nginx `secure_link` (`--key` is the secret in `secure_link_md5`).
    Nginx,
    /// Cloudflare token authentication checked by a WAF rule with `is_timed_hmac_valid_v0` (`--key` is the
    /// rule's secret; needs `--lifetime`).
    Cloudflare,
    /// Cloudflare Stream signed token, an RS256 JWT (`--key-file` is the signing key's PEM or its base64,
    /// `--key-id` its id).
    #[value(name = "cloudflare_stream")]
    CloudflareStream,
    /// Fastly URL token (`--key` is the base64 key of the VCL's `digest.base64_decode`).
    Fastly,
    /// Usher's own origin grant (`--key` is `secrets.grant_key`; needs `--session`).
    Usher,
}

/// Arguments of `usher sign-url`.
#[derive(Debug, Args)]
pub struct SignUrlArgs {
    /// The signing scheme.
    #[arg(long, value_enum, required_unless_present = "cdn")]
    pub scheme: Option<SchemeArg>,
    /// Sign with this CDN of a running server's pool (its scheme and keys) instead; `--path` is then
    /// relative to the CDN's base URL (`demo/master.m3u8`) and `--prefix` a relative folder (`demo/`).
    #[arg(long, conflicts_with_all = ["scheme", "key", "key_file", "url"])]
    pub cdn: Option<String>,
    /// The server holding the pool (with `--cdn`).
    #[arg(long, env = "USHER_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// An admin API key of that server (with `--cdn`).
    #[arg(long, env = "USHER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Key material as text (prefer `--key-file` or `USHER_SIGN_KEY`, which stay out of `ps`).
    #[arg(
        long,
        env = "USHER_SIGN_KEY",
        hide_env_values = true,
        conflicts_with = "key_file"
    )]
    pub key: Option<String>,
    /// A file holding the key material (a PEM file for CloudFront).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// CloudFront: the public key id (`K…`) or key pair id (`APKA…`).
    #[arg(long)]
    pub key_pair_id: Option<String>,
    /// Google: the key's name on the backend.
    #[arg(long)]
    pub key_name: Option<String>,
    /// The URL to sign (absolute, percent-encoded).
    #[arg(long, required_unless_present = "path", conflicts_with = "path")]
    pub url: Option<String>,
    /// The path to sign (absolute, percent-encoded), for schemes that sign paths.
    #[arg(long)]
    pub path: Option<String>,
    /// A path (or URL) prefix to cover instead of the one object, e.g. `/demo/` for a whole stream.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Expiry: Unix seconds or RFC 3339 (`2030-01-01T00:00:00Z`).
    #[arg(long)]
    pub expires: String,
    /// Start of validity: Unix seconds or RFC 3339 (Akamai, CloudFront).
    #[arg(long)]
    pub starts: Option<String>,
    /// The viewer's IP address to bind (Akamai, CloudFront, Bunny, nginx with `$remote_addr`, Cloudflare
    /// Stream), or a network in CIDR form (`203.0.113.0/24`) for schemes that bind one (CloudFront's IPv4
    /// `AWS:SourceIp`, Cloudflare Stream's `ip.src`).
    #[arg(long, value_parser = parse_ip_or_network)]
    pub ip: Option<(IpAddr, Option<u8>)>,
    /// The viewer's session to bind (Akamai `id=`, nginx session variable, Usher).
    #[arg(long)]
    pub session: Option<String>,
    /// How the viewer presents it: akamai `query|cookie|header`, cloudfront `url|cookies`, google
    /// `url|cookie`, bunny `query|path`, nginx `query|path|cookie`.
    #[arg(long)]
    pub delivery: Option<String>,
    /// Hash: akamai `sha256|sha1|md5`, cloudfront `sha1|sha256`.
    #[arg(long)]
    pub algorithm: Option<String>,
    /// Akamai: `acl` (default) or `url` token.
    #[arg(long)]
    pub token: Option<String>,
    /// Akamai: the query, cookie or header name (default `__token__`).
    #[arg(long)]
    pub token_name: Option<String>,
    /// Akamai: more ACL patterns, joined with `!` after the derived one (repeat for several).
    #[arg(long = "acl")]
    pub acls: Vec<String>,
    /// Akamai: the salt.
    #[arg(long)]
    pub salt: Option<String>,
    /// Akamai: the `data=` payload.
    #[arg(long)]
    pub data: Option<String>,
    /// Bunny: `hmac` (current, default), `sha256` (earlier) or `md5` (basic, Token Authentication V1) form.
    #[arg(long)]
    pub form: Option<String>,
    /// Bunny: `token_countries`, the countries allowed (`CA,US`).
    #[arg(long)]
    pub countries_allowed: Option<String>,
    /// Bunny: `token_countries_blocked`, the countries refused (`RU,CN`).
    #[arg(long)]
    pub countries_blocked: Option<String>,
    /// Bunny: `limit`, the speed limit in kB/s (hmac form).
    #[arg(long)]
    pub speed_limit: Option<u64>,
    /// Bunny: `token_ignore_params=true`, the URL's own query neither signed nor kept (hmac form).
    #[arg(long)]
    pub ignore_params: bool,
    /// Akamai: escape `ip`, `id`, `data` and `url` early, as Akamai's Python library's `escape_early=True`.
    #[arg(long)]
    pub escape_early: bool,
    /// Cloudflare: the rule's token lifetime in seconds (`is_timed_hmac_valid_v0`'s `lengthOfTime`).
    #[arg(long)]
    pub lifetime: Option<u64>,
    /// Cloudflare, Fastly: the query parameter carrying the token (default `verify`, `token`).
    #[arg(long)]
    pub token_param: Option<String>,
    /// Cloudflare Stream: the signing key's id (`kid`).
    #[arg(long)]
    pub key_id: Option<String>,
    /// Cloudflare Stream: the `accessRules` JSON array put first in the token
    /// (`[{"type":"ip.geoip.country","country":["GB"],"action":"allow"}]`).
    #[arg(long)]
    pub access_rules: Option<String>,
    /// Cloudflare Stream: `downloadable`, the token also allows MP4 downloads.
    #[arg(long)]
    pub downloadable: bool,
    /// Google: the cookie's scope, `cdn_host` (default, `Domain=<CDN host>`), `host_only` (no `Domain`) or
    /// `parent_domain` (with `--cookie-domain`).
    #[arg(long)]
    pub cookie_scope: Option<String>,
    /// Google: the parent domain of `--cookie-scope parent_domain` (`example.com`).
    #[arg(long)]
    pub cookie_domain: Option<String>,
    /// nginx: the `secure_link_md5` expression with `$secret` where the secret stands.
    #[arg(long)]
    pub expression: Option<String>,
    /// nginx: the variable holding the decoded path (default `uri`).
    #[arg(long)]
    pub path_variable: Option<String>,
    /// nginx: the variable holding the session (e.g. `cookie_usher_session`).
    #[arg(long)]
    pub session_variable: Option<String>,
    /// nginx: the variable holding the covered prefix.
    #[arg(long)]
    pub prefix_variable: Option<String>,
    /// nginx: what the prefix variable holds, `path` (`/d/abc123/`, default) or `folder` (`abc123`).
    #[arg(long)]
    pub prefix_holds: Option<String>,
    /// nginx: the cookie of `--delivery cookie` (default `usher_link`).
    #[arg(long)]
    pub cookie_name: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parses `--ip`: an address, or a network in CIDR form (the address and its prefix length).
fn parse_ip_or_network(text: &str) -> Result<(IpAddr, Option<u8>), String> {
    crate::service::admin::cdns::parse_client(text).ok_or_else(|| {
        format!("{text:?} is neither an IP address nor a CIDR network (203.0.113.0/24)")
    })
}

/// Parses `--expires`/`--starts`: Unix seconds or RFC 3339.
fn parse_time(what: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    let t = OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("{what} must be Unix seconds or RFC 3339, not {text:?}"))?;
    Ok(t.unix_timestamp())
}

fn key_material(args: &SignUrlArgs) -> anyhow::Result<String> {
    match (&args.key, &args.key_file) {
        (Some(k), None) => Ok(k.clone()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the key file {}", path.display()))?;
            // A PEM keeps its line breaks; other keys are one line.
            Ok(if text.contains("-----BEGIN") {
                text
            } else {
                text.trim().to_owned()
            })
        }
        (None, None) => bail!("give the key with --key-file, USHER_SIGN_KEY or --key"),
        (Some(_), Some(_)) => bail!("give either --key or --key-file"),
    }
}

/// The scheme configuration these arguments describe, as the server's configuration would hold it.
fn scheme_config(args: &SignUrlArgs, key: String) -> Value {
    let mut c = Map::new();
    let mut set = |name: &str, value: Option<Value>| {
        if let Some(v) = value {
            c.insert(name.to_owned(), v);
        }
    };
    let s = |v: &Option<String>| v.clone().map(Value::String);
    let name = match args.scheme.unwrap_or(SchemeArg::Usher) {
        SchemeArg::Akamai => {
            set("key", Some(key.into()));
            set("algorithm", s(&args.algorithm));
            set("token", s(&args.token));
            set("delivery", s(&args.delivery));
            set("token_name", s(&args.token_name));
            set("salt", s(&args.salt));
            set("data", s(&args.data));
            if args.escape_early {
                set("escape_early", Some(true.into()));
            }
            if !args.acls.is_empty() {
                set("extra_acls", Some(json!(args.acls)));
            }
            "akamai"
        }
        SchemeArg::Cloudfront => {
            set("private_key_pem", Some(key.into()));
            set("key_pair_id", s(&args.key_pair_id));
            set("hash_algorithm", s(&args.algorithm));
            set("delivery", s(&args.delivery));
            "cloudfront"
        }
        SchemeArg::Google => {
            set("key", Some(key.into()));
            set("key_name", s(&args.key_name));
            set("delivery", s(&args.delivery));
            set("cookie_scope", s(&args.cookie_scope));
            set("cookie_domain", s(&args.cookie_domain));
            "google"
        }
        SchemeArg::Bunny => {
            set("key", Some(key.into()));
            set("form", s(&args.form));
            set("delivery", s(&args.delivery));
            set("countries_allowed", s(&args.countries_allowed));
            set("countries_blocked", s(&args.countries_blocked));
            set("speed_limit", args.speed_limit.map(Value::from));
            if args.ignore_params {
                set("ignore_params", Some(true.into()));
            }
            "bunny"
        }
        SchemeArg::Nginx => {
            set("secret", Some(key.into()));
            set("expression", s(&args.expression));
            set("delivery", s(&args.delivery));
            set("path_variable", s(&args.path_variable));
            set("session_variable", s(&args.session_variable));
            set("prefix_variable", s(&args.prefix_variable));
            set("prefix_holds", s(&args.prefix_holds));
            set("cookie_name", s(&args.cookie_name));
            "nginx"
        }
        SchemeArg::Cloudflare => {
            set("secret", Some(key.into()));
            set("lifetime_s", args.lifetime.map(Value::from));
            set("token_param", s(&args.token_param));
            "cloudflare"
        }
        SchemeArg::CloudflareStream => {
            set("private_key_pem", Some(key.into()));
            set("key_id", s(&args.key_id));
            if args.downloadable {
                set("downloadable", Some(true.into()));
            }
            // malformed JSON is left for the scheme's parser to name
            set(
                "access_rules",
                args.access_rules.as_deref().map(|r| {
                    serde_json::from_str(r).unwrap_or_else(|_| Value::String(r.to_owned()))
                }),
            );
            "cloudflare_stream"
        }
        SchemeArg::Fastly => {
            set("key", Some(key.into()));
            set("token_param", s(&args.token_param));
            "fastly"
        }
        SchemeArg::Usher => {
            set("key", Some(key.into()));
            "usher"
        }
    };
    c.insert("scheme".to_owned(), name.into());
    Value::Object(c)
}

/// The request these arguments describe.
fn request(args: &SignUrlArgs) -> anyhow::Result<SignRequest> {
    let expires = parse_time("--expires", &args.expires)?;
    let mut req = match (&args.url, &args.path) {
        (Some(u), _) => SignRequest::url(u.clone(), expires),
        (None, Some(p)) => SignRequest::path(p.clone(), expires),
        (None, None) => bail!("give --url or --path"),
    };
    req.prefix = args.prefix.clone();
    req.starts_at = args
        .starts
        .as_deref()
        .map(|s| parse_time("--starts", s))
        .transpose()?;
    req.client_ip = args.ip.map(|(ip, _)| ip);
    req.client_network_bits = args.ip.and_then(|(_, bits)| bits);
    req.session_id = args.session.clone();
    Ok(req)
}

/// Signs as the arguments say; the printable result.
///
/// # Errors
/// A bad argument, an unreadable key file, or the scheme's refusal, with the reason.
pub fn sign(args: &SignUrlArgs) -> anyhow::Result<Signed> {
    let key = key_material(args)?;
    let config = scheme_config(args, key);
    // The key is never echoed: serde's messages name the field, not its value.
    let scheme: Scheme = serde_json::from_value(config).context("scheme options")?;
    let signer = scheme.signer().context("scheme configuration")?;
    let req = request(args)?;
    signer.sign(&req).context("signing")
}

/// The text form: the URL, then one `Set-Cookie:` line per cookie and one line per header.
pub fn render_text(signed: &Signed) -> String {
    let mut out = format!("URL: {}\n", signed.url);
    for c in &signed.cookies {
        out.push_str(&format!("Set-Cookie: {}\n", c.set_cookie()));
    }
    for h in &signed.headers {
        out.push_str(&format!("Header: {}: {}\n", h.name, h.value));
    }
    out
}

/// The JSON form: `{"url", "cookies": [{…, "set_cookie"}], "headers": [{"name", "value"}]}`.
pub fn render_json(signed: &Signed) -> Value {
    json!({
        "url": signed.url,
        "cookies": signed.cookies.iter().map(|c| {
            let mut v = json!(c);
            v["set_cookie"] = c.set_cookie().into();
            v
        }).collect::<Vec<_>>(),
        "headers": signed.headers,
    })
}

/// Asks a running server to sign with a CDN of its pool (`--cdn`).
async fn sign_remote(args: &SignUrlArgs, cdn: &str) -> anyhow::Result<Signed> {
    let key = args
        .api_key
        .as_deref()
        .context("--cdn needs an admin API key in USHER_API_KEY (or --api-key)")?;
    let path = args
        .path
        .as_deref()
        .context("--cdn needs --path, relative to the CDN's base URL (demo/master.m3u8)")?;
    let mut body = json!({
        "path": path.trim_start_matches('/'),
        "expires_at": parse_time("--expires", &args.expires)?,
    });
    if let Some(p) = &args.prefix {
        body["prefix"] = p.trim_start_matches('/').into();
    }
    if let Some(s) = &args.starts {
        body["starts_at"] = parse_time("--starts", s)?.into();
    }
    if let Some((ip, bits)) = args.ip {
        body["client_ip"] = match bits {
            Some(b) => format!("{ip}/{b}"),
            None => ip.to_string(),
        }
        .into();
    }
    if let Some(s) = &args.session {
        body["session_id"] = s.clone().into();
    }
    let url = format!(
        "{}/api/v1/cdns/{cdn}/sign",
        args.server.trim_end_matches('/')
    );
    let res = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("asking {} to sign", args.server))?;
    let status = res.status();
    let answer: Value = res
        .json()
        .await
        .with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            answer["detail"]
                .as_str()
                .or(answer["title"].as_str())
                .unwrap_or("no detail")
        );
    }
    serde_json::from_value(answer).context("the server's answer is not a signed URL")
}

/// Runs `usher sign-url`.
///
/// # Errors
/// As [`sign`], or the server's refusal with `--cdn`.
pub async fn run(args: SignUrlArgs) -> anyhow::Result<()> {
    let signed = match &args.cdn {
        Some(cdn) => sign_remote(&args, cdn).await?,
        None => sign(&args)?,
    };
    if args.json {
        println!("{}", render_json(&signed));
    } else {
        print!("{}", render_text(&signed));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        assert_eq!(parse_time("t", "1549751401").unwrap(), 1_549_751_401);
        assert_eq!(
            parse_time("t", "2019-02-09T22:30:01Z").unwrap(),
            1_549_751_401
        );
        assert_eq!(
            parse_time("t", "2019-02-10T00:30:01+02:00").unwrap(),
            1_549_751_401
        );
        assert!(parse_time("t", "tomorrow").is_err());
    }
}
