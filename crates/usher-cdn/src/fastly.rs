//! Fastly URL token validation: `?token=<expires>_<signature>` checked in VCL.
//!
//! Followed: Fastly's guide "Enabling URL token validation"
//! (<https://docs.fastly.com/en/guides/enabling-url-token-validation>), whose VCL takes the `token` query
//! parameter out of `req.url`, requires `^(\d{10,11})_([a-f0-9]{40})$`, and compares the signature with
//! `regsub(digest.hmac_sha1(digest.base64_decode("<key>"), req.url + <expires>), "^0x", "")`, answering 403
//! for a bad signature and 410 for an expired one; and Fastly's token samples
//! (<https://github.com/fastly/token-functions>: `hmac.new(base64.b64decode(key), path + expiration, sha1)
//! .hexdigest()`, token `<expiration>_<signature>`).
//!
//! So the key is base64 (as the VCL decodes it), the signature is the lower-case hex HMAC-SHA1 of the URL's
//! path and query as they go on the wire (without the token) followed by the expiry in decimal, and the token
//! is appended as the last query parameter. A token covers one URL: no prefix, address, session or start.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use serde::Deserialize;
use sha1::Sha1;

use crate::error::SignError;
use crate::request::{SignRequest, Signed};
use crate::uri::{Target, append_query};

const SCHEME: &str = "Fastly";

/// The signature for `path_and_query` (as on the wire, without the token) until `expires`: lower-case hex
/// HMAC-SHA1 keyed with the decoded key.
pub fn signature(key: &[u8], path_and_query: &str, expires: i64) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(path_and_query.as_bytes());
    mac.update(expires.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Decodes the base64 key written in the VCL's `digest.base64_decode("…")`.
///
/// # Errors
/// [`SignError::BadKey`] unless it is standard base64 of at least 16 bytes.
pub fn parse_key(b64: &str) -> Result<Vec<u8>, SignError> {
    let key = STANDARD.decode(b64.trim()).map_err(|_| {
        SignError::BadKey("Fastly keys are base64, as in the VCL's digest.base64_decode")
    })?;
    if key.len() < 16 {
        return Err(SignError::BadKey(
            "at least 16 bytes (openssl rand -base64 32)",
        ));
    }
    Ok(key)
}

/// A Fastly configuration: the key and the query parameter the VCL reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FastlyParams {
    /// The key in base64, as in the VCL.
    pub key: SecretString,
    /// The query parameter carrying the token (`token`, as in Fastly's VCL).
    #[serde(default = "default_token_param")]
    pub token_param: String,
}

fn default_token_param() -> String {
    "token".to_owned()
}

/// [`FastlyParams`] with the key decoded.
#[derive(Debug)]
pub struct FastlySigner {
    key: SecretSlice<u8>,
    token_param: String,
}

impl FastlySigner {
    /// Decodes the key and checks the parameter name.
    ///
    /// # Errors
    /// [`SignError::BadKey`], [`SignError::BadField`].
    pub fn new(params: FastlyParams) -> Result<Self, SignError> {
        let key = parse_key(params.key.expose_secret())?;
        crate::uri::check_param_name("token_param", &params.token_param)?;
        Ok(Self {
            key: key.into(),
            token_param: params.token_param,
        })
    }

    /// Signs one URL.
    ///
    /// # Errors
    /// [`SignError::Unsupported`] for a prefix, address, session or start; [`SignError::BadUrl`] for a URL
    /// already carrying the token parameter; [`SignError::BadTimes`] for an expiry the VCL's
    /// `\d{10,11}` does not take.
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
        if !(1_000_000_000..=99_999_999_999).contains(&req.expires_at) {
            return Err(SignError::BadTimes(
                "Fastly's VCL takes an expiry of 10 or 11 digits",
            ));
        }
        let t = Target::parse(&req.resource)?;
        if crate::uri::query_has(t.query.as_deref(), &self.token_param) {
            return Err(SignError::BadUrl("the URL already carries a token"));
        }
        let sig = signature(
            self.key.expose_secret(),
            &t.path_and_query(),
            req.expires_at,
        );
        Ok(Signed::url(append_query(
            &t.url(),
            &format!("{}={}_{sig}", self.token_param, req.expires_at),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of Fastly's token samples (fastly/token-functions README: `base64.b64decode(
    /// "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24=")`, path `/foo/bar.html`).
    const KEY: &str = "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24=";

    fn signer() -> FastlySigner {
        FastlySigner::new(FastlyParams {
            key: KEY.into(),
            token_param: default_token_param(),
        })
        .unwrap()
    }

    // Known answers: Fastly publishes no token with its key and time, so these values were computed with the
    // guide's own Python sample (fastly/token-functions README, `hmac.new(key, "{0}{1}".format(path,
    // expiration), sha1).hexdigest()` with the clock fixed at the expiry) in Python 3.11; the tests in
    // crates/usher-server/tests/it/sign_url.rs compute them again with an independent script.
    #[test]
    fn tokens_as_fastlys_sample_computes_them() {
        let s = signer();
        let url = s
            .sign(&SignRequest::url(
                "https://www.example.com/foo/bar.html",
                1_536_399_430,
            ))
            .unwrap()
            .url;
        assert_eq!(
            url,
            "https://www.example.com/foo/bar.html?token=1536399430_2ff701d4b75cbafce1919e87647b07177fa7bee2"
        );
        // The current VCL signs req.url with the token filtered out: path and the other parameters.
        let with_query = s
            .sign(&SignRequest::path("/foo/bar.html?v=2", 1_536_399_430))
            .unwrap()
            .url;
        assert_eq!(
            with_query,
            format!(
                "/foo/bar.html?v=2&token=1536399430_{}",
                signature(
                    &STANDARD.decode(KEY).unwrap(),
                    "/foo/bar.html?v=2",
                    1_536_399_430
                )
            )
        );
    }

    #[test]
    fn refusals() {
        let s = signer();
        let req = || SignRequest::path("/a.ts", 2_000_000_000);
        assert!(s.sign(&req().with_prefix("/")).is_err());
        assert!(s.sign(&req().for_session("s")).is_err());
        assert!(
            s.sign(&req().for_client("192.0.2.1".parse().unwrap()))
                .is_err()
        );
        assert!(s.sign(&req().starting_at(1)).is_err());
        assert!(s.sign(&SignRequest::path("/a.ts", 999_999_999)).is_err());
        assert!(
            s.sign(&SignRequest::path("/a.ts?token=1", 2_000_000_000))
                .is_err()
        );
        assert!(parse_key("not base64!").is_err());
        assert!(parse_key("c2hvcnQ=").is_err());
        assert!(
            FastlySigner::new(FastlyParams {
                key: KEY.into(),
                token_param: "to ken".into()
            })
            .is_err()
        );
        assert!(!format!("{s:?}").contains("iqFP"));
    }
}
