//! The API document's shape of a CDN's `signing` object: one schema per vendor scheme, tagged by `scheme`,
//! naming every option `usher-cdn` reads (`usher_cdn::Scheme`), so an operator finds them in the reference.
//!
//! These types only describe; `usher-cdn` parses the configuration itself (refusing unknown options). The
//! test below holds the two together: every option documented here is one `usher-cdn` knows, and every
//! option `usher-cdn` knows of a scheme is documented here.

#![expect(
    dead_code,
    reason = "types read by utoipa's derive only: the configuration is parsed by usher-cdn"
)]

use utoipa::ToSchema;

/// How a CDN signs its viewers' URLs, with its keys (write-only: never answered). Tagged by `scheme`; an
/// unknown scheme or option is `invalid_request` (400), a value the scheme cannot use a 422
/// (`signing_key_invalid`, `signing_option_invalid`, `signing_unmatchable`).
#[derive(ToSchema)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Signing {
    /// Akamai EdgeAuth 2.0 tokens.
    Akamai(AkamaiSigning),
    /// Amazon CloudFront signed URLs or cookies.
    Cloudfront(CloudfrontSigning),
    /// Google Cloud CDN signed URLs or cookie.
    Google(GoogleSigning),
    /// Bunny CDN token authentication.
    Bunny(BunnySigning),
    /// nginx `secure_link` (`secure_link_md5`).
    Nginx(NginxSigning),
    /// Cloudflare token authentication checked by a WAF custom rule with `is_timed_hmac_valid_v0`.
    Cloudflare(CloudflareSigning),
    /// Cloudflare Stream signed tokens (RS256 JWT in place of the video id).
    CloudflareStream(CloudflareStreamSigning),
    /// Fastly URL token validation (`?token=<expires>_<hex HMAC-SHA1>`, checked in VCL).
    Fastly(FastlySigning),
}

/// Akamai EdgeAuth 2.0.
#[derive(ToSchema)]
pub struct AkamaiSigning {
    /// The token key as Akamai shows it (hex).
    key: String,
    /// The HMAC's hash: `sha256` (default), `sha1`, `md5`.
    algorithm: Option<String>,
    /// `acl` (default: one token for the folder) or `url` (one URL).
    token: Option<String>,
    /// `query` (default), `cookie` or `header`.
    delivery: Option<String>,
    /// The query parameter, cookie or header name (default `__token__`).
    token_name: Option<String>,
    /// A second secret mixed into the HMAC.
    salt: Option<String>,
    /// The `data=` payload.
    data: Option<String>,
    /// More ACL patterns, joined by `!` after the stream folder's.
    extra_acls: Option<Vec<String>>,
    /// Escape `ip`, `id`, `data` and `url` as Akamai's Python library's `escape_early=True` does (URL
    /// escapes in lower case); for properties whose verification escapes early. Default false.
    escape_early: Option<bool>,
}

/// Amazon CloudFront; a viewer's IPv4 network (`http.grant_address_prefix_v4`) goes into a custom
/// policy's `AWS:SourceIp` as a CIDR range.
#[derive(ToSchema)]
pub struct CloudfrontSigning {
    /// The public key's id in the key group (`K…`) or a key pair id (`APKA…`).
    key_pair_id: String,
    /// The RSA private key, PEM (PKCS#1 or PKCS#8).
    private_key_pem: String,
    /// `sha1` (default) or `sha256` (adds `Hash-Algorithm=SHA256`).
    hash_algorithm: Option<String>,
    /// `url` (default) or `cookies` (`CloudFront-Policy`, `-Signature`, `-Key-Pair-Id`).
    delivery: Option<String>,
}

/// Google Cloud CDN.
#[derive(ToSchema)]
pub struct GoogleSigning {
    /// The key's name on the backend.
    key_name: String,
    /// The key, base64url (16 bytes).
    key: String,
    /// `url` (default) or `cookie` (`Cloud-CDN-Cookie`).
    delivery: Option<String>,
    /// The cookie's `Domain`: `cdn_host` (default, `Domain=<CDN host>`: set by the CDN host's own answer),
    /// `host_only` (no `Domain`), or `parent_domain` (`Domain=<cookie_domain>`: a page on a sibling host
    /// of the same site may set it).
    cookie_scope: Option<String>,
    /// The parent domain of the CDN's host for `parent_domain` (`example.com`).
    cookie_domain: Option<String>,
}

/// Bunny CDN.
#[derive(ToSchema)]
pub struct BunnySigning {
    /// The pull zone's URL token authentication key.
    key: String,
    /// `hmac` (default, `HS256-` tokens), `sha256` (earlier) or `md5` (basic, Token Authentication V1: one
    /// path, its expiry and an address; no folder, countries, limit, ignored parameters or path delivery).
    form: Option<String>,
    /// `query` (default, `?token=…&expires=…`) or `path` (`/bcdn_token=…&expires=…/path`).
    delivery: Option<String>,
    /// `token_countries`: the countries allowed, ISO 3166-1 alpha-2 joined by `,` (`CA,US`).
    countries_allowed: Option<String>,
    /// `token_countries_blocked`: the countries refused (`RU,CN`).
    countries_blocked: Option<String>,
    /// `limit`: the speed limit in kB/s, 1 to 10,000,000 (`hmac` form).
    speed_limit: Option<u64>,
    /// `token_ignore_params=true`: the URL's own query neither signed nor kept (`hmac` form; not with
    /// countries or a limit, which Bunny's token then drops).
    ignore_params: Option<bool>,
}

/// nginx `secure_link` with `secure_link_md5`.
#[derive(ToSchema)]
pub struct NginxSigning {
    /// The secret written in the expression.
    secret: String,
    /// The `secure_link_md5` expression with `$secret` where the secret stands (default
    /// `$secure_link_expires$uri $secret`).
    expression: Option<String>,
    /// `query` (default, `?md5=…&expires=…`), `path` (`/<hash>,<expires>/path`) or `cookie`
    /// (`<cookie_name>=<hash>,<expires>` scoped to the folder, for `secure_link $cookie_usher_link;`).
    delivery: Option<String>,
    /// The query argument carrying the hash (default `md5`).
    hash_arg: Option<String>,
    /// The query argument carrying the expiry (default `expires`).
    expires_arg: Option<String>,
    /// The variable holding the decoded path (default `uri`; in path delivery a regex capture, since
    /// `$uri` then holds the hash).
    path_variable: Option<String>,
    /// The variable holding the session (`cookie_usher_session`).
    session_variable: Option<String>,
    /// The variable holding the covered folder (a regex capture).
    prefix_variable: Option<String>,
    /// What `prefix_variable` holds: `path` (default, the whole prefix `/d/abc123/`) or `folder` (the
    /// folder's name alone, `abc123`).
    prefix_holds: Option<String>,
    /// The cookie of cookie delivery (default `usher_link`).
    cookie_name: Option<String>,
}

/// Cloudflare WAF token (`<path>?verify=<issued>-<base64 HMAC-SHA256 of path ‖ issued>`).
#[derive(ToSchema)]
pub struct CloudflareSigning {
    /// The rule's secret (its first argument).
    secret: String,
    /// The rule's `lengthOfTime` in seconds (1 to 31,622,400): the token is issued that long before the
    /// expiry, so it lapses at the expiry.
    lifetime_s: u64,
    /// The query parameter (default `verify`; the rule's separator length is its length plus 2).
    token_param: Option<String>,
}

/// One Cloudflare Stream access rule, evaluated in order.
#[derive(ToSchema)]
pub struct CloudflareStreamAccessRule {
    /// `any`, `ip.src` or `ip.geoip.country`.
    #[serde(rename = "type")]
    kind: String,
    /// `allow` or `block`.
    action: String,
    /// `ip.geoip.country`: upper-case ISO 3166-1 alpha-2 codes.
    country: Option<Vec<String>>,
    /// `ip.src`: addresses or CIDR networks.
    ip: Option<Vec<String>>,
}

/// Cloudflare Stream; a viewer's network is bound with an `ip.src` allow and an `any` block rule after
/// the configured rules (not after a configured `any` rule).
#[derive(ToSchema)]
pub struct CloudflareStreamSigning {
    /// The signing key's `id` (the token's `kid`).
    key_id: String,
    /// The signing key: PEM, or its base64 as `POST /stream/keys` answers it.
    private_key_pem: String,
    /// `accessRules` put first in every token (at most 20).
    access_rules: Option<Vec<CloudflareStreamAccessRule>>,
    /// `downloadable`: the token also allows MP4 downloads.
    downloadable: Option<bool>,
}

/// Fastly URL token.
#[derive(ToSchema)]
pub struct FastlySigning {
    /// The key in base64 (the VCL's `digest.base64_decode("…")`), at least 16 bytes.
    key: String,
    /// The query parameter (default `token`).
    token_param: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use utoipa::PartialSchema as _;

    use super::*;

    /// The options this module documents for each scheme, read from the generated schema.
    fn documented() -> Vec<(String, Vec<String>)> {
        let schema = serde_json::to_value(Signing::schema()).unwrap();
        let mut parts = Vec::new();
        <Signing as ToSchema>::schemas(&mut parts);
        let components: std::collections::HashMap<String, Value> = parts
            .into_iter()
            .map(|(name, s)| (name, serde_json::to_value(s).unwrap()))
            .collect();
        let variants = schema["oneOf"]
            .as_array()
            .expect("oneOf per scheme")
            .clone();
        variants
            .iter()
            .map(|v| {
                // a tagged variant is allOf [the struct, {scheme}] or one object with both
                let mut names = Vec::new();
                let mut tag = String::new();
                let parts = v["allOf"]
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![v.clone()]);
                for part in parts {
                    let part = match part.get("$ref").and_then(Value::as_str) {
                        Some(r) => {
                            let name = r.trim_start_matches("#/components/schemas/");
                            components
                                .get(name)
                                .cloned()
                                .unwrap_or_else(|| panic!("{r}"))
                        }
                        None => part,
                    };
                    for (name, prop) in part["properties"].as_object().cloned().unwrap_or_default()
                    {
                        if name == "scheme" {
                            tag = prop["enum"][0].as_str().unwrap().to_owned();
                        } else {
                            names.push(name);
                        }
                    }
                }
                (tag, names)
            })
            .collect()
    }

    #[test]
    fn every_documented_option_is_one_usher_cdn_reads_and_none_is_missing() {
        let doc = documented();
        let schemes: Vec<&str> = doc.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            schemes,
            [
                "akamai",
                "cloudfront",
                "google",
                "bunny",
                "nginx",
                "cloudflare",
                "cloudflare_stream",
                "fastly"
            ]
        );
        for (scheme, names) in &doc {
            for name in names {
                // an unknown option is refused by name; a known one fails (if at all) on its value
                let err = serde_json::from_value::<usher_cdn::Scheme>(
                    json!({"scheme": scheme, name: {}}),
                )
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
                assert!(!err.contains("unknown field"), "{scheme}.{name}: {err}");
            }
            // and usher-cdn knows no option left out here: its "expected one of" lists them all
            let err = serde_json::from_value::<usher_cdn::Scheme>(
                json!({"scheme": scheme, "zz_not_an_option": 1}),
            )
            .unwrap_err()
            .to_string();
            // serde lists them in backquotes after "expected" (`one of `a`, `b`` or `a` or `b``)
            let expected = err
                .split_once("expected")
                .unwrap_or_else(|| panic!("{scheme}: {err}"))
                .1;
            for (i, option) in expected.split('`').enumerate() {
                if i % 2 == 1 {
                    assert!(
                        names.iter().any(|n| n == option),
                        "{scheme}: usher-cdn reads `{option}`, which the API document does not name"
                    );
                }
            }
        }
    }
}
