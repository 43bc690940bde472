//! Cloudflare token authentication checked by a WAF custom rule with `is_timed_hmac_valid_v0()`, in its
//! query-parameter form: `<path>?verify=<issued>-<mac>`.
//!
//! Followed: Cloudflare's "Configure token authentication"
//! (<https://developers.cloudflare.com/waf/custom-rules/use-cases/configure-token-authentication/>) and the
//! Rules language's HMAC validation function
//! (<https://developers.cloudflare.com/ruleset-engine/rules-language/functions/#hmac-validation>): the rule
//! `is_timed_hmac_valid_v0("<secret>", http.request.uri, <lifetime>, http.request.timestamp.sec, <len("?verify=")>)`
//! takes the message as everything in `http.request.uri` before the separator (`?verify=`, or `&verify=`
//! when the URL has other parameters: the token must be the last parameter), then `<issued>-<mac>` where
//! `mac` is base64 (URL-encoded: `+` `/` `=` as `%2B` `%2F` `%3D`) of HMAC-SHA256(secret, message ‖ issued),
//! and accepts it while `now < issued + lifetime`. The guide's Python sample computes the same:
//! `hmac.new(secret, "{}{}".format(message, timestamp), sha256)`, `urllib.parse.quote_plus(base64.b64encode(…))`.
//!
//! The token names when it was *issued*, not when it lapses: to lapse at the request's expiry, Usher signs it
//! as issued `lifetime_s` earlier, so `lifetime_s` must be the rule's own lifetime argument. One token covers
//! one URL (the guide's directory form needs a fixed-length folder in the rule): no prefix, address, session
//! or start.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::SignError;
use crate::request::{SignRequest, Signed};
use crate::uri::{Target, append_query};

const SCHEME: &str = "Cloudflare token authentication";

/// The token value `<issued>-<mac>` for `message` (the URL's path and query before the token, as on the
/// wire), with the MAC URL-encoded as the rule expects it without flags.
pub fn token(secret: &[u8], message: &str, issued: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(message.as_bytes());
    mac.update(issued.to_string().as_bytes());
    let b64 = STANDARD.encode(mac.finalize().into_bytes());
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!("{issued}-{encoded}")
}

/// A Cloudflare WAF token configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareParams {
    /// The secret, as written in the rule's first argument.
    pub secret: SecretString,
    /// The rule's `lengthOfTime` argument, in seconds: how long after it was issued a token passes.
    pub lifetime_s: u64,
    /// The query parameter carrying the token (`verify`, as in Cloudflare's guide); the rule's separator
    /// length is its length plus 2 (`?verify=` is 8).
    #[serde(default = "default_token_param")]
    pub token_param: String,
}

fn default_token_param() -> String {
    "verify".to_owned()
}

/// Largest lifetime accepted: a year.
const MAX_LIFETIME_S: u64 = 366 * 24 * 3600;

/// [`CloudflareParams`] checked.
#[derive(Debug)]
pub struct CloudflareSigner {
    secret: SecretString,
    lifetime_s: i64,
    token_param: String,
}

impl CloudflareSigner {
    /// Checks the secret, lifetime and parameter name.
    ///
    /// # Errors
    /// [`SignError::BadKey`] for an empty secret or one holding `"` or `\` (which a rule's string literal
    /// cannot carry as written); [`SignError::BadField`] otherwise.
    pub fn new(params: CloudflareParams) -> Result<Self, SignError> {
        let secret = params.secret.expose_secret();
        if secret.is_empty() {
            return Err(SignError::BadKey("empty"));
        }
        if secret.contains(['"', '\\']) || secret.chars().any(char::is_control) {
            return Err(SignError::BadKey(
                "no '\"', '\\' or control characters (the rule holds the secret in a string literal)",
            ));
        }
        if params.lifetime_s == 0 || params.lifetime_s > MAX_LIFETIME_S {
            return Err(SignError::BadField {
                field: "lifetime_s",
                reason: "1 to 31622400 seconds: the rule's lengthOfTime argument",
            });
        }
        crate::uri::check_param_name("token_param", &params.token_param)?;
        Ok(Self {
            secret: params.secret,
            lifetime_s: i64::try_from(params.lifetime_s).unwrap_or(i64::MAX),
            token_param: params.token_param,
        })
    }

    /// Signs one URL so that the rule lets it through until the request's expiry.
    ///
    /// # Errors
    /// [`SignError::Unsupported`] for a prefix, address, session or start; [`SignError::BadTimes`] for an
    /// expiry not more than `lifetime_s` after 1970; [`SignError::BadUrl`] for a URL already carrying the
    /// token parameter.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        for (given, what) in [
            (req.prefix.is_some(), "a prefix (a token covers one URL)"),
            (req.client_ip.is_some(), "an address"),
            (req.session_id.is_some(), "a session"),
            (req.starts_at.is_some(), "a start time"),
        ] {
            if given {
                return Err(SignError::Unsupported {
                    scheme: SCHEME,
                    what,
                });
            }
        }
        let issued = req.expires_at - self.lifetime_s;
        if issued <= 0 {
            return Err(SignError::BadTimes(
                "the expiry minus lifetime_s (the issue time the token names) must be after 1970",
            ));
        }
        let t = Target::parse(&req.resource)?;
        if crate::uri::query_has(t.query.as_deref(), &self.token_param) {
            return Err(SignError::BadUrl("the URL already carries a token"));
        }
        let value = token(
            self.secret.expose_secret().as_bytes(),
            &t.path_and_query(),
            issued,
        );
        Ok(Signed::url(append_query(
            &t.url(),
            &format!("{}={value}", self.token_param),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(lifetime_s: u64) -> CloudflareSigner {
        CloudflareSigner::new(CloudflareParams {
            secret: "mysecrettoken".into(),
            lifetime_s,
            token_param: default_token_param(),
        })
        .unwrap()
    }

    // Known answers: the guide's example (secret `mysecrettoken`, message `/images/cat.jpg`, issued 1484063787,
    // lifetime 10800) prints `verify=1484063787-9JQB8vP1…` in its text, but that value is not what its own
    // sample code computes for those inputs (nor for the older guide's `/download/cat.jpg`), so it is an
    // illustration. These values are what the guide's Python 3.8 sample computes with the timestamp fixed
    // (run in Python 3.11); crates/usher-server/tests/it/sign_url.rs computes them again with an
    // independent script and checks them as the rule does.
    #[test]
    fn tokens_as_cloudflares_sample_computes_them() {
        let s = signer(10_800);
        let url = s
            .sign(&SignRequest::url(
                "https://downloads.example.com/images/cat.jpg",
                1_484_063_787 + 10_800,
            ))
            .unwrap()
            .url;
        assert_eq!(
            url,
            "https://downloads.example.com/images/cat.jpg?verify=1484063787-XsZ5NmtNBxOd4f4fBOtqVmpWRnDRNkHKVZieqDPKu3U%3D"
        );
        // Another parameter: the message runs up to `&verify=`, and the token goes last.
        let q = s
            .sign(&SignRequest::path("/images/cat.jpg?size=2", 1_484_074_587))
            .unwrap()
            .url;
        assert_eq!(
            q,
            format!(
                "/images/cat.jpg?size=2&verify={}",
                token(b"mysecrettoken", "/images/cat.jpg?size=2", 1_484_063_787)
            )
        );
    }

    #[test]
    fn refusals() {
        let s = signer(60);
        let req = || SignRequest::path("/a.ts", 2_000_000_000);
        assert!(s.sign(&req().with_prefix("/")).is_err());
        assert!(s.sign(&req().for_session("s")).is_err());
        assert!(
            s.sign(&req().for_client("192.0.2.1".parse().unwrap()))
                .is_err()
        );
        assert!(s.sign(&req().starting_at(1)).is_err());
        assert!(s.sign(&SignRequest::path("/a.ts", 60)).is_err());
        assert!(
            s.sign(&SignRequest::path("/a.ts?verify=1", 2_000_000_000))
                .is_err()
        );
        for (secret, lifetime) in [
            ("", 60),
            ("a\"b", 60),
            ("ok", 0),
            ("ok", MAX_LIFETIME_S + 1),
        ] {
            assert!(
                CloudflareSigner::new(CloudflareParams {
                    secret: secret.into(),
                    lifetime_s: lifetime,
                    token_param: default_token_param(),
                })
                .is_err(),
                "{secret} {lifetime}"
            );
        }
        assert!(!format!("{s:?}").contains("mysecret"));
    }
}
