//! Cloudflare Stream signed URLs: an RS256 JSON Web Token put in place of the video's id,
//! `https://customer-<code>.cloudflarestream.com/<token>/manifest/video.m3u8`.
//!
//! Followed: Cloudflare's "Secure your Stream"
//! (<https://developers.cloudflare.com/stream/viewing-videos/securing-your-stream/>), whose Worker sample
//! signs `base64url(header) . base64url(claims)` with RSASSA-PKCS1-v1_5 over SHA-256 under a signing key
//! made by `POST /stream/keys` (its `id` is the `kid`; its `pem` is the private key, base64-encoded), with
//! header `{"alg":"RS256","kid":…}` and claims `{"sub": <video id>, "kid", "exp", "nbf"?, "accessRules"?,
//! "downloadable"?}`. Access rules are evaluated in order, the first match deciding:
//! `{"type": "ip.geoip.country", "country": ["GB"], "action": "allow"}`, `{"type": "ip.src", "ip":
//! ["93.184.216.0/24"], "action": "allow"}`, `{"type": "any", "action": "block"}`.
//!
//! The JWS is built with the `jsonwebtoken` crate's RS256 signer over the header and claims serialized
//! compactly in the sample's key order. A token covers one video (all its renditions and segments, whose
//! URIs are relative to it), so a prefix must be the video's folder. A viewer's address or network is bound by
//! appending `ip.src` allow and `any` block rules after the configured ones; a configuration whose rules
//! already end in an `any` rule cannot bind one (the appended rules would never be reached).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::SignError;
use crate::request::{AddressBinding, Capabilities, SignRequest, Signed};
use crate::uri::{Target, prefix_path};

const SCHEME: &str = "Cloudflare Stream";

/// What an access rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleType {
    /// Every request.
    #[serde(rename = "any")]
    Any,
    /// The viewer's address in one of `ip` (CIDR networks or addresses).
    #[serde(rename = "ip.src")]
    IpSrc,
    /// The viewer's country (ISO 3166-1 alpha-2) in `country`.
    #[serde(rename = "ip.geoip.country")]
    Country,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Let the request through.
    Allow,
    /// Refuse it.
    Block,
}

/// One of the token's `accessRules`, as Cloudflare reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// What it matches.
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// What it does.
    pub action: RuleAction,
    /// `ip.geoip.country`: the countries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Vec<String>>,
    /// `ip.src`: the networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Vec<String>>,
}

impl AccessRule {
    fn check(&self) -> Result<(), SignError> {
        let bad = |reason| SignError::BadField {
            field: "access_rules",
            reason,
        };
        match self.kind {
            RuleType::Any if self.country.is_some() || self.ip.is_some() => {
                Err(bad("an `any` rule takes neither `country` nor `ip`"))
            }
            RuleType::Any => Ok(()),
            RuleType::Country => match (&self.country, &self.ip) {
                (Some(c), None)
                    if !c.is_empty()
                        && c.len() <= 300
                        && c.iter().all(|cc| {
                            cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase())
                        }) =>
                {
                    Ok(())
                }
                _ => Err(bad(
                    "an `ip.geoip.country` rule takes `country`: 1 to 300 upper-case ISO 3166-1 alpha-2 codes",
                )),
            },
            RuleType::IpSrc => match (&self.ip, &self.country) {
                (Some(ips), None)
                    if !ips.is_empty()
                        && ips.len() <= 100
                        && ips.iter().all(|ip| crate::uri::parse_cidr(ip).is_some()) =>
                {
                    Ok(())
                }
                _ => Err(bad(
                    "an `ip.src` rule takes `ip`: 1 to 100 addresses or CIDR networks",
                )),
            },
        }
    }
}

/// A Cloudflare Stream signing key and the restrictions every token carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudflareStreamParams {
    /// The signing key's `id` (the token's `kid`).
    pub key_id: String,
    /// The signing key's private key: PEM, or the base64 of the PEM as `POST /stream/keys` answers it.
    pub private_key_pem: SecretString,
    /// `accessRules` put first in every token (at most 20).
    #[serde(default)]
    pub access_rules: Vec<AccessRule>,
    /// `downloadable`: the token also allows MP4 downloads.
    #[serde(default)]
    pub downloadable: bool,
}

/// [`CloudflareStreamParams`] with the key parsed.
pub struct CloudflareStreamSigner {
    key_id: String,
    key: EncodingKey,
    access_rules: Vec<AccessRule>,
    downloadable: bool,
}

impl std::fmt::Debug for CloudflareStreamSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudflareStreamSigner")
            .field("key_id", &self.key_id)
            .field("access_rules", &self.access_rules)
            .field("downloadable", &self.downloadable)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    kid: &'a str,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(rename = "accessRules", skip_serializing_if = "Vec::is_empty")]
    access_rules: Vec<AccessRule>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    downloadable: bool,
}

/// Reads the private key given as PEM or as the base64 of a PEM.
fn parse_key(text: &str) -> Result<EncodingKey, SignError> {
    let text = text.trim();
    let pem = if text.starts_with("-----BEGIN") {
        text.as_bytes().to_vec()
    } else {
        let compact: String = text.split_whitespace().collect();
        let decoded = STANDARD.decode(compact).map_err(|_| {
            SignError::BadPem(
                "neither a PEM nor the base64 of one (the `pem` of /stream/keys)".into(),
            )
        })?;
        if !decoded.starts_with(b"-----BEGIN") {
            return Err(SignError::BadPem(
                "the base64 does not hold a PEM (the `pem` of /stream/keys)".into(),
            ));
        }
        decoded
    };
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(SignError::BadPem(
            "encrypted keys are not supported; decrypt it first".into(),
        ));
    }
    // the message of jsonwebtoken names the PEM's problem, never its content
    EncodingKey::from_rsa_pem(&pem).map_err(|e| SignError::BadPem(e.to_string()))
}

impl CloudflareStreamSigner {
    /// Parses the key and checks the rules.
    ///
    /// # Errors
    /// [`SignError::BadPem`], [`SignError::BadField`].
    pub fn new(params: CloudflareStreamParams) -> Result<Self, SignError> {
        if params.key_id.is_empty()
            || params.key_id.len() > 64
            || !params.key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SignError::BadField {
                field: "key_id",
                reason: "1 to 64 letters and digits (the `id` of /stream/keys)",
            });
        }
        if params.access_rules.len() > 20 {
            return Err(SignError::BadField {
                field: "access_rules",
                reason: "at most 20 rules",
            });
        }
        for rule in &params.access_rules {
            rule.check()?;
        }
        let key = parse_key(params.private_key_pem.expose_secret())?;
        let signer = Self {
            key_id: params.key_id,
            key,
            access_rules: params.access_rules,
            downloadable: params.downloadable,
        };
        // a key that parses but cannot sign (too small for RS256) is refused now, not at the first viewer
        signer.jws("0", 1, None, Vec::new())?;
        Ok(signer)
    }

    /// The bindings: a start (`nbf`), the video folder, and any network of either family through `ip.src`
    /// unless a configured `any` rule ends the evaluation first.
    pub fn capabilities(&self) -> Capabilities {
        let address = if self.access_rules.iter().any(|r| r.kind == RuleType::Any) {
            AddressBinding::None
        } else {
            AddressBinding::Network
        };
        Capabilities {
            session: false,
            client_v4: address,
            client_v6: address,
            client_ip_required: false,
            starts_at: true,
            prefix: true,
        }
    }

    fn jws(
        &self,
        video: &str,
        exp: i64,
        nbf: Option<i64>,
        extra_rules: Vec<AccessRule>,
    ) -> Result<String, SignError> {
        let header = serde_json::to_vec(&Header {
            alg: "RS256",
            kid: &self.key_id,
        })
        .map_err(|_| SignError::Rsa)?;
        let mut access_rules = self.access_rules.clone();
        access_rules.extend(extra_rules);
        let claims = serde_json::to_vec(&Claims {
            sub: video,
            kid: &self.key_id,
            exp,
            nbf,
            access_rules,
            downloadable: self.downloadable,
        })
        .map_err(|_| SignError::Rsa)?;
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::RS256)
            .map_err(|_| SignError::Rsa)?;
        Ok(format!("{message}.{signature}"))
    }

    /// Signs the video the URL names (its first path segment, replaced by the token).
    ///
    /// # Errors
    /// [`SignError::Unsupported`] for a session or an address the rules cannot bind; [`SignError::BadPath`]
    /// for a URL without a video id or a prefix other than the video's folder; [`SignError::BadTimes`].
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        if req.session_id.is_some() {
            return Err(SignError::Unsupported {
                scheme: SCHEME,
                what: "a session",
            });
        }
        if req.expires_at <= 0 {
            return Err(SignError::BadTimes("expiry must be after 1970"));
        }
        if let Some(nbf) = req.starts_at
            && (nbf <= 0 || nbf >= req.expires_at)
        {
            return Err(SignError::BadTimes(
                "start must be after 1970 and before the expiry",
            ));
        }
        let t = Target::parse(&req.resource)?;
        let rest = &t.path[1..];
        let (video, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if video.is_empty() || !video.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SignError::BadPath(
                "the path starts with the video's id: /<video id>/manifest/video.m3u8",
            ));
        }
        if let Some(p) = &req.prefix {
            let p = prefix_path(p)?;
            // the token covers the whole video, so any folder inside it is covered too
            if !p.starts_with(&format!("/{video}/")) && p != format!("/{video}") {
                return Err(SignError::BadPath(
                    "a token covers one video: the prefix must be the video's folder /<video id>/ or inside it",
                ));
            }
        }
        let mut extra = Vec::new();
        if let Some(ip) = req.client_ip {
            if self.capabilities().address_binding(ip) == AddressBinding::None {
                return Err(SignError::Unsupported {
                    scheme: SCHEME,
                    what: "an address after a configured `any` rule",
                });
            }
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = req.client_network_bits.unwrap_or(max);
            extra.push(AccessRule {
                kind: RuleType::IpSrc,
                action: RuleAction::Allow,
                country: None,
                ip: Some(vec![format!(
                    "{}/{bits}",
                    crate::uri::network_address(ip, bits)
                )]),
            });
            extra.push(AccessRule {
                kind: RuleType::Any,
                action: RuleAction::Block,
                country: None,
                ip: None,
            });
        }
        let token = self.jws(video, req.expires_at, req.starts_at, extra)?;
        let mut url = format!("{}/{token}", t.origin);
        if !tail.is_empty() {
            url.push('/');
            url.push_str(tail);
        }
        if let Some(q) = &t.query {
            url.push('?');
            url.push_str(q);
        }
        Ok(Signed::url(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIDEO: &str = "ea95132c15732412d22c1476fa83f27a";
    const KID: &str = "8f926b2b01f383510025a78a4dcbf6a";

    fn signer(rules: serde_json::Value) -> CloudflareStreamSigner {
        let pem = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
        CloudflareStreamSigner::new(
            serde_json::from_value(serde_json::json!({
                "key_id": KID, "private_key_pem": pem, "access_rules": rules,
            }))
            .unwrap(),
        )
        .unwrap()
    }

    fn part(token: &str, i: usize) -> serde_json::Value {
        let p = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    // Known answer: the token Cloudflare's Worker sample ("Secure your Stream", Option 2, step 2) makes for
    // these claims, with the sample's header and claim order, computed independently in Python 3.11 with
    // `cryptography` 48 (`private_key.sign(header_b64 + "." + claims_b64, PKCS1v15(), SHA256())`) on the AWS
    // SDK for JavaScript v3's test key (testdata/); RS256 is deterministic, so the bytes must agree.
    // crates/usher-server/tests/it/sign_url.rs verifies `usher sign-url`'s tokens with PyJWT.
    #[test]
    fn the_worker_samples_token() {
        let s = signer(serde_json::json!([
            {"type": "ip.geoip.country", "action": "allow", "country": ["GB"]},
        ]));
        let url = s
            .sign(&SignRequest::url(
                format!("https://customer-abc123.cloudflarestream.com/{VIDEO}/manifest/video.m3u8"),
                1_700_003_600,
            ))
            .unwrap()
            .url;
        let token = url
            .strip_prefix("https://customer-abc123.cloudflarestream.com/")
            .and_then(|r| r.strip_suffix("/manifest/video.m3u8"))
            .unwrap();
        assert_eq!(
            part(token, 0),
            serde_json::json!({"alg": "RS256", "kid": KID})
        );
        assert_eq!(
            part(token, 1),
            serde_json::json!({"sub": VIDEO, "kid": KID, "exp": 1_700_003_600,
                "accessRules": [{"type": "ip.geoip.country", "action": "allow", "country": ["GB"]}]})
        );
        assert_eq!(
            token,
            include_str!("../testdata/cloudflare-stream-token.txt").trim()
        );
    }

    #[test]
    fn a_network_start_and_folder() {
        let s = signer(serde_json::json!([]));
        let req = SignRequest::url(
            format!("https://customer-abc123.cloudflarestream.com/{VIDEO}/manifest/video.m3u8"),
            1_700_003_600,
        )
        .with_prefix(format!("/{VIDEO}/"))
        .starting_at(1_700_000_000)
        .for_client_network("203.0.113.77".parse().unwrap(), 24);
        let url = s.sign(&req).unwrap().url;
        let token = url.split('/').nth(3).unwrap();
        assert_eq!(
            part(token, 1),
            serde_json::json!({"sub": VIDEO, "kid": KID, "exp": 1_700_003_600, "nbf": 1_700_000_000,
                "accessRules": [{"type": "ip.src", "action": "allow", "ip": ["203.0.113.0/24"]},
                                {"type": "any", "action": "block"}]})
        );
        let other = req.clone().with_prefix("/other/");
        assert!(s.sign(&other).is_err());
        assert!(s.sign(&req.clone().for_session("s")).is_err());
        // a configured catch-all: no address can be bound after it
        let closed = signer(serde_json::json!([{"type": "any", "action": "allow"}]));
        assert_eq!(closed.capabilities().client_v4, AddressBinding::None);
        assert!(closed.sign(&req).is_err());
    }

    #[test]
    fn refusals() {
        let pem = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
        let new = |v: serde_json::Value| {
            serde_json::from_value::<CloudflareStreamParams>(v)
                .map_err(|e| e.to_string())
                .and_then(|p| CloudflareStreamSigner::new(p).map_err(|e| e.to_string()))
        };
        for bad in [
            serde_json::json!({"key_id": "", "private_key_pem": pem}),
            serde_json::json!({"key_id": "k", "private_key_pem": "bm90IGEgcGVt"}),
            serde_json::json!({"key_id": "k", "private_key_pem": pem, "access_rules": [{"type": "ip.src", "action": "allow", "ip": ["300.0.0.1"]}]}),
            serde_json::json!({"key_id": "k", "private_key_pem": pem, "access_rules": [{"type": "ip.geoip.country", "action": "block", "country": ["usa"]}]}),
            serde_json::json!({"key_id": "k", "private_key_pem": pem, "access_rules": [{"type": "any", "action": "block", "ip": ["1.2.3.4"]}]}),
            serde_json::json!({"key_id": "k", "private_key_pem": pem, "access_rules": [{"type": "asn", "action": "block"}]}),
        ] {
            assert!(new(bad.clone()).is_err(), "{bad}");
        }
        // the base64 of the PEM, as /stream/keys answers it
        let b64 = STANDARD.encode(pem);
        assert!(new(serde_json::json!({"key_id": "k", "private_key_pem": b64})).is_ok());
        let s = signer(serde_json::json!([]));
        assert!(!format!("{s:?}").contains("MII"));
        assert!(s.sign(&SignRequest::url("https://c.example/", 10)).is_err());
    }
}
