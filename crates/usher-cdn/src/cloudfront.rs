//! Amazon CloudFront signed URLs and signed cookies, with canned and custom policies.
//!
//! Followed: the CloudFront Developer Guide, "Create a signed URL using a canned policy", "… using a custom
//! policy", "Set signed cookies using a canned policy" / "… a custom policy" and "Code examples for creating a
//! signature for a signed URL" (<https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/>), and
//! AWS's reference signer, botocore's `CloudFrontSigner` (`botocore/signers.py`).
//!
//! The policy is compact JSON (no whitespace). The canned policy's key order is fixed:
//! `{"Statement":[{"Resource":…,"Condition":{"DateLessThan":{"AWS:EpochTime":…}}}]}`; a custom policy adds
//! `IpAddress` and `DateGreaterThan` (in botocore's order) and may use a `*` wildcard resource, which is what
//! HLS needs since a canned policy covers one URL. The policy is signed with RSA PKCS#1 v1.5 over SHA-1, or
//! SHA-256 with `Hash-Algorithm=SHA256`, and policy and signature are sent in CloudFront's base64 variant
//! (`+`→`-`, `=`→`_`, `/`→`~`). URL parameters: `Expires` (canned) or `Policy` (custom), `Signature`,
//! `Key-Pair-Id`, then `Hash-Algorithm`; cookies use the same values under `CloudFront-` names.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner as _, SignatureEncoding};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha1::Sha1;
use sha2::Sha256;

use crate::error::SignError;
use crate::request::{Cookie, SignRequest, Signed};
use crate::uri::{Target, append_query};

/// The hash under the RSA signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SHA-1 (the default, and the only one older distributions know).
    #[default]
    Sha1,
    /// SHA-256, announced with `Hash-Algorithm=SHA256`.
    Sha256,
}

/// How the viewer presents the signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// Query parameters on the URL (the default).
    #[default]
    Url,
    /// `CloudFront-*` cookies.
    Cookies,
}

/// A policy's conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy<'a> {
    /// The URL covered, possibly with `*` wildcards.
    pub resource: &'a str,
    /// `DateLessThan`: not valid from (Unix seconds).
    pub expires_at: i64,
    /// `DateGreaterThan`: not valid before (Unix seconds).
    pub starts_at: Option<i64>,
    /// `IpAddress`: the viewer's address or network, in CIDR form (`/32` is added to a bare IPv4 address and
    /// `/128` to a bare IPv6 address).
    pub source_ip: Option<&'a str>,
}

impl Policy<'_> {
    /// A canned policy can say only "this exact URL until then".
    pub fn is_canned(&self) -> bool {
        self.starts_at.is_none() && self.source_ip.is_none() && !self.resource.contains('*')
    }

    /// The compact JSON CloudFront signs.
    ///
    /// # Errors
    /// [`SignError::BadUrl`] for a resource that is not printable ASCII; [`SignError::BadField`] for a bad
    /// address; [`SignError::BadTimes`] for impossible times.
    pub fn to_json(&self) -> Result<String, SignError> {
        if self.resource.is_empty() || !self.resource.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SignError::BadUrl(
                "a policy resource is printable ASCII (percent-encode the rest)",
            ));
        }
        if self.expires_at <= 0 {
            return Err(SignError::BadTimes("expiry must be after 1970"));
        }
        if let Some(st) = self.starts_at
            && (st < 0 || st >= self.expires_at)
        {
            return Err(SignError::BadTimes("start must be before the expiry"));
        }
        // serde_json escapes `"` and `\` the way CloudFront's JSON parser reads them; the rest is plain ASCII.
        let resource =
            serde_json::to_string(self.resource).map_err(|_| SignError::BadUrl("resource"))?;
        let mut json = format!(
            "{{\"Statement\":[{{\"Resource\":{resource},\"Condition\":{{\"DateLessThan\":{{\"AWS:EpochTime\":{}}}",
            self.expires_at
        );
        if let Some(ip) = self.source_ip {
            let cidr = cidr(ip)?;
            json.push_str(&format!(",\"IpAddress\":{{\"AWS:SourceIp\":\"{cidr}\"}}"));
        }
        if let Some(st) = self.starts_at {
            json.push_str(&format!(",\"DateGreaterThan\":{{\"AWS:EpochTime\":{st}}}"));
        }
        json.push_str("}}]}");
        Ok(json)
    }
}

fn cidr(ip: &str) -> Result<String, SignError> {
    let bad = SignError::BadField {
        field: "source_ip",
        reason: "an IP address or CIDR network",
    };
    let (addr, len) = match ip.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (ip, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad.clone())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or(bad)?,
        None => max,
    };
    Ok(format!("{addr}/{len}"))
}

/// CloudFront's URL-safe base64: standard base64 with `+`→`-`, `=`→`_`, `/`→`~`.
pub fn cloudfront_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// Reads an RSA private key from PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, unencrypted).
///
/// # Errors
/// [`SignError::BadPem`] otherwise.
pub fn parse_private_key(pem: &str) -> Result<RsaPrivateKey, SignError> {
    let pem = pem.trim();
    let key = if pem.starts_with("-----BEGIN RSA PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| SignError::BadPem(e.to_string()))?
    } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
        RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| SignError::BadPem(e.to_string()))?
    } else if pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(SignError::BadPem(
            "encrypted keys are not supported; decrypt it first".into(),
        ));
    } else {
        return Err(SignError::BadPem(
            "expected '-----BEGIN RSA PRIVATE KEY-----' or '-----BEGIN PRIVATE KEY-----'".into(),
        ));
    };
    Ok(key)
}

/// Signs `policy` (the JSON bytes) with RSA PKCS#1 v1.5 and returns the signature in CloudFront's base64.
///
/// # Errors
/// [`SignError::Rsa`] when the key cannot sign (too small for the digest).
pub fn sign_policy(
    key: &RsaPrivateKey,
    hash: HashAlgorithm,
    policy: &[u8],
) -> Result<String, SignError> {
    // PKCS#1 v1.5 signatures are deterministic; the random numbers only blind the private-key operation
    // against timing attacks (RUSTSEC-2023-0071), so the result is the same as unblinded.
    let mut rng = rand::rngs::OsRng;
    let sig = match hash {
        HashAlgorithm::Sha1 => SigningKey::<Sha1>::new(key.clone())
            .try_sign_with_rng(&mut rng, policy)
            .map_err(|_| SignError::Rsa)?
            .to_vec(),
        HashAlgorithm::Sha256 => SigningKey::<Sha256>::new(key.clone())
            .try_sign_with_rng(&mut rng, policy)
            .map_err(|_| SignError::Rsa)?
            .to_vec(),
    };
    Ok(cloudfront_base64(&sig))
}

/// A CloudFront configuration: the key pair and how signatures are made and delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudFrontParams {
    /// The public key's id in the distribution's key group (`K…`) or a legacy key pair id (`APKA…`).
    pub key_pair_id: String,
    /// The RSA private key, PEM.
    pub private_key_pem: SecretString,
    /// SHA-1 or SHA-256.
    #[serde(default)]
    pub hash_algorithm: HashAlgorithm,
    /// URL or cookies.
    #[serde(default)]
    pub delivery: Delivery,
}

/// [`CloudFrontParams`] with the key parsed, ready to sign many requests.
pub struct CloudFrontSigner {
    key_pair_id: String,
    hash: HashAlgorithm,
    delivery: Delivery,
    sha1: SigningKey<Sha1>,
    sha256: SigningKey<Sha256>,
}

impl std::fmt::Debug for CloudFrontSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontSigner")
            .field("key_pair_id", &self.key_pair_id)
            .field("hash", &self.hash)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl CloudFrontSigner {
    /// Parses the key.
    ///
    /// # Errors
    /// [`SignError::BadPem`] for an unreadable key; [`SignError::BadField`] for a bad key pair id.
    pub fn new(params: CloudFrontParams) -> Result<Self, SignError> {
        if params.key_pair_id.is_empty()
            || !params
                .key_pair_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return Err(SignError::BadField {
                field: "key_pair_id",
                reason: "letters and digits",
            });
        }
        let key = parse_private_key(params.private_key_pem.expose_secret())?;
        Ok(Self {
            key_pair_id: params.key_pair_id,
            hash: params.hash_algorithm,
            delivery: params.delivery,
            sha1: SigningKey::<Sha1>::new(key.clone()),
            sha256: SigningKey::<Sha256>::new(key),
        })
    }

    fn signature(&self, policy: &[u8]) -> Result<String, SignError> {
        // blinded, as in `sign_policy`
        let mut rng = rand::rngs::OsRng;
        let sig = match self.hash {
            HashAlgorithm::Sha1 => self
                .sha1
                .try_sign_with_rng(&mut rng, policy)
                .map_err(|_| SignError::Rsa)?
                .to_vec(),
            HashAlgorithm::Sha256 => self
                .sha256
                .try_sign_with_rng(&mut rng, policy)
                .map_err(|_| SignError::Rsa)?
                .to_vec(),
        };
        Ok(cloudfront_base64(&sig))
    }

    /// Signs one request: a canned policy for one URL until its expiry, a custom policy when the request has
    /// a prefix (wildcard resource `<prefix>*`), a start time or a client address.
    ///
    /// # Errors
    /// [`SignError::UrlRequired`] for a path resource; [`SignError::Unsupported`] for a session;
    /// [`SignError`] for bad URLs and times.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        if req.session_id.is_some() {
            return Err(SignError::Unsupported {
                scheme: "CloudFront",
                what: "a session",
            });
        }
        let target = Target::parse(&req.resource)?;
        if target.origin.is_empty() {
            return Err(SignError::UrlRequired);
        }
        let url = target.url();
        let resource = match &req.prefix {
            Some(p) => format!("{}*", target.absolute_prefix(p)?),
            None => url.clone(),
        };
        let ip = req.client_ip.map(|ip| match req.client_network_bits {
            Some(bits) => format!("{}/{bits}", crate::uri::network_address(ip, bits)),
            None => ip.to_string(),
        });
        let policy = Policy {
            resource: &resource,
            expires_at: req.expires_at,
            starts_at: req.starts_at,
            source_ip: ip.as_deref(),
        };
        let canned = policy.is_canned();
        let json = policy.to_json()?;
        let signature = self.signature(json.as_bytes())?;
        let mut pairs: Vec<(&str, String)> = Vec::with_capacity(4);
        if canned {
            pairs.push(("Expires", req.expires_at.to_string()));
        } else {
            pairs.push(("Policy", cloudfront_base64(json.as_bytes())));
        }
        pairs.push(("Signature", signature));
        pairs.push(("Key-Pair-Id", self.key_pair_id.clone()));
        if self.hash == HashAlgorithm::Sha256 {
            pairs.push(("Hash-Algorithm", "SHA256".to_owned()));
        }
        Ok(match self.delivery {
            Delivery::Url => {
                let query = pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&");
                Signed::url(append_query(&url, &query))
            }
            Delivery::Cookies => Signed {
                url,
                cookies: pairs
                    .into_iter()
                    .map(|(k, v)| Cookie::new(&format!("CloudFront-{k}"), v, &target.origin))
                    .collect(),
                headers: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::vectors;

    /// The RSA test key of the AWS SDK for JavaScript v3 (`packages/cloudfront-signer/src/sign.spec.ts`),
    /// with its key pair id and URL. The SDK's test computes its expected signatures at run time, so the
    /// expected values come from AWS's botocore `CloudFrontSigner` with Python's `rsa` as the RSA signer,
    /// run by scripts/vendor-vectors.sh (versions pinned in vectors/requirements.txt), which also verifies
    /// every signature with `openssl dgst -verify` against `aws-sdk-js-v3-test-key.pub.pem`.
    const PEM: &str = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
    const PEM_PKCS8: &str = include_str!("../testdata/aws-sdk-js-v3-test-key.pkcs8.pem");
    const KEY_PAIR_ID: &str = "APKAEIBAERJR2EXAMPLE";
    const URL: &str = "https://d111111abcdef8.cloudfront.net/private-content/private.jpeg";
    // 2020-01-01, as in the SDK's test.
    const EXPIRES: i64 = 1_577_836_800;

    /// One vector: botocore's policy (`build_policy`), its signature and the URL `generate_presigned_url`
    /// gives, with `&Hash-Algorithm=SHA256` added for SHA-256 as the Developer Guide shows.
    #[derive(Deserialize)]
    struct Vector {
        id: String,
        inputs: Inputs,
        policy: String,
        policy_base64: String,
        signature: String,
        value: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inputs {
        key_pair_id: String,
        /// `rsa.sign`'s hash name: `SHA-1` or `SHA-256`.
        hash: String,
        /// The URL signed.
        url: String,
        expires: i64,
        /// A custom policy's resource (`…/*`); none for a canned policy.
        resource: Option<String>,
        starts: Option<i64>,
        ip_address: Option<IpAddr>,
    }

    impl Inputs {
        fn hash(&self) -> HashAlgorithm {
            match self.hash.as_str() {
                "SHA-1" => HashAlgorithm::Sha1,
                "SHA-256" => HashAlgorithm::Sha256,
                other => panic!("hash {other}"),
            }
        }
    }

    fn signer(hash: HashAlgorithm, delivery: Delivery) -> CloudFrontSigner {
        CloudFrontSigner::new(CloudFrontParams {
            key_pair_id: KEY_PAIR_ID.into(),
            private_key_pem: PEM.into(),
            hash_algorithm: hash,
            delivery,
        })
        .unwrap()
    }

    /// The request Usher signs for a vector: a custom policy's wildcard resource is the request's prefix.
    fn request(i: &Inputs) -> SignRequest {
        let mut req = SignRequest::url(&i.url, i.expires);
        if let Some(resource) = &i.resource {
            let prefix = resource.strip_suffix('*').expect("a wildcard resource");
            req = req.with_prefix(prefix);
        }
        if let Some(st) = i.starts {
            req = req.starting_at(st);
        }
        if let Some(ip) = i.ip_address {
            req = req.for_client(ip);
        }
        req
    }

    #[test]
    fn policies_signatures_and_urls_are_botocores() {
        let key = parse_private_key(PEM).unwrap();
        for v in vectors::of::<Vector>("cloudfront") {
            let i = &v.inputs;
            assert_eq!(i.key_pair_id, KEY_PAIR_ID, "{}", v.id);
            let ip = i.ip_address.map(|ip| ip.to_string());
            let policy = Policy {
                resource: i.resource.as_deref().unwrap_or(&i.url),
                expires_at: i.expires,
                starts_at: i.starts,
                source_ip: ip.as_deref(),
            };
            assert_eq!(policy.is_canned(), i.resource.is_none(), "{}", v.id);
            let json = policy.to_json().unwrap();
            assert_eq!(json, v.policy, "{}", v.id);
            assert_eq!(
                cloudfront_base64(json.as_bytes()),
                v.policy_base64,
                "{}",
                v.id
            );
            assert_eq!(
                sign_policy(&key, i.hash(), json.as_bytes()).unwrap(),
                v.signature,
                "{}",
                v.id
            );
            let signed = signer(i.hash(), Delivery::Url).sign(&request(i)).unwrap();
            assert_eq!(signed.url, v.value, "{}", v.id);
        }
    }

    #[test]
    fn a_pkcs8_key_signs_the_same() {
        let v: Vector = vectors::one("cloudfront/canned_sha1");
        let k = parse_private_key(PEM_PKCS8).unwrap();
        assert_eq!(
            sign_policy(&k, HashAlgorithm::Sha1, v.policy.as_bytes()).unwrap(),
            v.signature
        );
    }

    #[test]
    fn custom_policy_cookies_carry_the_url_values() {
        // Signed cookies carry the same three values as the URL (the Developer Guide's "Set signed cookies
        // using a custom policy").
        let v: Vector = vectors::one("cloudfront/custom_wildcard_start_ip_sha1");
        let c = signer(v.inputs.hash(), Delivery::Cookies)
            .sign(&request(&v.inputs))
            .unwrap();
        assert_eq!(c.url, v.inputs.url);
        assert!(
            v.value.contains(&format!(
                "?Policy={}&Signature={}&",
                v.policy_base64, v.signature
            )),
            "{}",
            v.value
        );
        let cookies: Vec<String> = c.cookies.iter().map(Cookie::set_cookie).collect();
        assert_eq!(
            cookies,
            [
                format!("CloudFront-Policy={}; Domain=d111111abcdef8.cloudfront.net; Path=/; Secure; HttpOnly", v.policy_base64),
                format!("CloudFront-Signature={}; Domain=d111111abcdef8.cloudfront.net; Path=/; Secure; HttpOnly", v.signature),
                "CloudFront-Key-Pair-Id=APKAEIBAERJR2EXAMPLE; Domain=d111111abcdef8.cloudfront.net; Path=/; Secure; HttpOnly".to_owned(),
            ]
        );
    }

    #[test]
    fn a_client_network_is_signed_as_its_cidr() {
        let req = SignRequest::url(
            "https://d111111abcdef8.cloudfront.net/demo/master.m3u8",
            EXPIRES,
        )
        .with_prefix("/demo/")
        .for_client_network("203.0.113.77".parse().unwrap(), 24);
        let s = signer(HashAlgorithm::Sha1, Delivery::Url)
            .sign(&req)
            .unwrap();
        let policy = s
            .url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("Policy="))
            .unwrap();
        let policy: String = policy
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '=',
                '~' => '/',
                c => c,
            })
            .collect();
        let json = String::from_utf8(STANDARD.decode(policy).unwrap()).unwrap();
        assert!(
            json.contains(r#""IpAddress":{"AWS:SourceIp":"203.0.113.0/24"}"#),
            "{json}"
        );
        assert_eq!(
            crate::uri::network_address("::ffff:203.0.113.77".parse().unwrap(), 16),
            "203.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            crate::uri::network_address("2001:db8:85a3:1::7".parse().unwrap(), 48),
            "2001:db8:85a3::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn canned_cookies_sha256_name_the_hash() {
        let c = signer(HashAlgorithm::Sha256, Delivery::Cookies)
            .sign(&SignRequest::url(URL, EXPIRES))
            .unwrap();
        let names: Vec<&str> = c.cookies.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CloudFront-Expires",
                "CloudFront-Signature",
                "CloudFront-Key-Pair-Id",
                "CloudFront-Hash-Algorithm"
            ]
        );
        assert_eq!(c.cookies[0].value, "1577836800");
        assert_eq!(c.cookies[3].value, "SHA256");
    }

    #[test]
    fn refusals() {
        let bad_pem = |pem: &str| {
            CloudFrontSigner::new(CloudFrontParams {
                key_pair_id: KEY_PAIR_ID.into(),
                private_key_pem: pem.into(),
                hash_algorithm: HashAlgorithm::Sha1,
                delivery: Delivery::Url,
            })
            .is_err()
        };
        assert!(bad_pem("not a key"));
        assert!(bad_pem(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"
        ));
        assert!(bad_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
        ));
        let s = signer(HashAlgorithm::Sha1, Delivery::Url);
        assert_eq!(
            s.sign(&SignRequest::path("/a", EXPIRES)),
            Err(SignError::UrlRequired)
        );
        assert!(
            s.sign(&SignRequest::url(URL, EXPIRES).for_session("s"))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::url(URL, EXPIRES).starting_at(EXPIRES))
                .is_err()
        );
        assert!(s.sign(&SignRequest::url(URL, 0)).is_err());
        assert_eq!(cidr("2001:db8::1").unwrap(), "2001:db8::1/128");
        assert_eq!(cidr("10.0.0.0/8").unwrap(), "10.0.0.0/8");
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(!format!("{s:?}").contains("PRIVATE"));
    }
}
