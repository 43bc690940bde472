//! The one configuration enum over every vendor scheme, and its prepared form.
//!
//! [`Scheme`] is what a CDN's configuration holds (deserialized from JSON or TOML, tagged by `scheme`); its
//! key material stays in `secrecy` types and never shows in `Debug`. [`Scheme::signer`] checks it and parses
//! keys once; the resulting [`Signer`] signs any number of [`SignRequest`]s.
//!
//! `Scheme` deserializes but does not serialize: keys are write-only, and whatever stores them chooses how.

use serde::Deserialize;

use crate::akamai::{AkamaiParams, AkamaiSigner, TokenKind};
use crate::bunny::{BunnyParams, BunnySigner};
use crate::cloudflare::{CloudflareParams, CloudflareSigner};
use crate::cloudflare_stream::{CloudflareStreamParams, CloudflareStreamSigner};
use crate::cloudfront::{CloudFrontParams, CloudFrontSigner};
use crate::error::SignError;
use crate::fastly::{FastlyParams, FastlySigner};
use crate::google::{GoogleParams, GoogleSigner};
use crate::nginx::{NginxParams, NginxSigner};
pub use crate::request::{AddressBinding, Capabilities};
use crate::request::{SignRequest, Signed};
use crate::usher::{UsherParams, UsherSigner};

/// A vendor scheme with its parameters and key material.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "scheme", rename_all = "snake_case")]
pub enum Scheme {
    /// Akamai EdgeAuth 2.0 tokens.
    Akamai(AkamaiParams),
    /// Amazon CloudFront signed URLs and cookies.
    Cloudfront(CloudFrontParams),
    /// Google Cloud CDN signed URLs and cookies.
    Google(GoogleParams),
    /// Bunny CDN token authentication.
    Bunny(BunnyParams),
    /// nginx `secure_link`.
    Nginx(NginxParams),
    /// Cloudflare token authentication checked by a WAF rule (`is_timed_hmac_valid_v0`).
    Cloudflare(CloudflareParams),
    /// Cloudflare Stream signed tokens (RS256 JWT).
    CloudflareStream(CloudflareStreamParams),
    /// Fastly URL token validation.
    Fastly(FastlyParams),
    /// Usher's own origin grant.
    Usher(UsherParams),
}

impl Scheme {
    /// The scheme's tag (`akamai`, `cloudfront`, `google`, `bunny`, `nginx`, `cloudflare`,
    /// `cloudflare_stream`, `fastly`, `usher`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Akamai(_) => "akamai",
            Self::Cloudfront(_) => "cloudfront",
            Self::Google(_) => "google",
            Self::Bunny(_) => "bunny",
            Self::Nginx(_) => "nginx",
            Self::Cloudflare(_) => "cloudflare",
            Self::CloudflareStream(_) => "cloudflare_stream",
            Self::Fastly(_) => "fastly",
            Self::Usher(_) => "usher",
        }
    }

    /// Checks the configuration and parses its keys.
    ///
    /// # Errors
    /// [`SignError`] naming the bad key or parameter.
    pub fn signer(self) -> Result<Signer, SignError> {
        Ok(match self {
            Self::Akamai(p) => Signer::Akamai(AkamaiSigner::new(p)?),
            Self::Cloudfront(p) => Signer::Cloudfront(Box::new(CloudFrontSigner::new(p)?)),
            Self::Google(p) => Signer::Google(GoogleSigner::new(p)?),
            Self::Bunny(p) => Signer::Bunny(BunnySigner::new(p)?),
            Self::Nginx(p) => Signer::Nginx(NginxSigner::new(p)?),
            Self::Cloudflare(p) => Signer::Cloudflare(CloudflareSigner::new(p)?),
            Self::CloudflareStream(p) => {
                Signer::CloudflareStream(Box::new(CloudflareStreamSigner::new(p)?))
            }
            Self::Fastly(p) => Signer::Fastly(FastlySigner::new(p)?),
            Self::Usher(p) => Signer::Usher(UsherSigner::new(&p)?),
        })
    }

    /// Signs one request (parsing the keys for this one call; prefer [`Scheme::signer`] for many).
    ///
    /// # Errors
    /// As [`Scheme::signer`] and [`Signer::sign`].
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        self.clone().signer()?.sign(req)
    }
}

/// A checked [`Scheme`] with its keys parsed.
#[derive(Debug)]
pub enum Signer {
    /// Akamai EdgeAuth 2.0.
    Akamai(AkamaiSigner),
    /// Amazon CloudFront (boxed: its two RSA signing keys dwarf the others).
    Cloudfront(Box<CloudFrontSigner>),
    /// Google Cloud CDN.
    Google(GoogleSigner),
    /// Bunny CDN.
    Bunny(BunnySigner),
    /// nginx `secure_link`.
    Nginx(NginxSigner),
    /// Cloudflare WAF token.
    Cloudflare(CloudflareSigner),
    /// Cloudflare Stream (boxed: its RSA key).
    CloudflareStream(Box<CloudflareStreamSigner>),
    /// Fastly URL token.
    Fastly(FastlySigner),
    /// Usher's grant.
    Usher(UsherSigner),
}

impl Signer {
    /// Signs one request: what a viewer gets.
    ///
    /// # Errors
    /// [`SignError`] saying why the request cannot be signed by this scheme.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        if let (Some(ip), Some(bits)) = (req.client_ip, req.client_network_bits) {
            let max = if ip.to_canonical().is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(SignError::BadField {
                    field: "client_network_bits",
                    reason: "at most 32 for an IPv4 address, 128 for an IPv6 one",
                });
            }
            let carried = match self.capabilities().address_binding(ip) {
                AddressBinding::Network => true,
                AddressBinding::Fixed(fixed) => fixed == bits,
                AddressBinding::None => false,
            };
            if !carried {
                return Err(SignError::Unsupported {
                    scheme: self.name(),
                    what: "a client network of that prefix length",
                });
            }
        }
        match self {
            Self::Akamai(s) => s.sign(req),
            Self::Cloudfront(s) => s.sign(req),
            Self::Google(s) => s.sign(req),
            Self::Bunny(s) => s.sign(req),
            Self::Nginx(s) => s.sign(req),
            Self::Cloudflare(s) => s.sign(req),
            Self::CloudflareStream(s) => s.sign(req),
            Self::Fastly(s) => s.sign(req),
            Self::Usher(s) => s.sign(req),
        }
    }

    /// The scheme's tag, as [`Scheme::name`].
    pub fn name(&self) -> &'static str {
        match self {
            Self::Akamai(_) => "akamai",
            Self::Cloudfront(_) => "cloudfront",
            Self::Google(_) => "google",
            Self::Bunny(_) => "bunny",
            Self::Nginx(_) => "nginx",
            Self::Cloudflare(_) => "cloudflare",
            Self::CloudflareStream(_) => "cloudflare_stream",
            Self::Fastly(_) => "fastly",
            Self::Usher(_) => "usher",
        }
    }

    /// The bindings this configuration can carry.
    ///
    /// Addresses: Akamai's `ip=` is compared exactly; CloudFront's custom policy takes an IPv4 CIDR
    /// network in `AWS:SourceIp` (AWS advises against `IpAddress` on IPv6-enabled distributions, so no IPv6
    /// binding); Bunny signs an IPv4 address exactly and an IPv6 one as its /64 (HMAC form; exactly in the
    /// SHA-256 and MD5 forms); Cloudflare Stream takes any network in `ip.src`; nginx compares the
    /// `$remote_addr` text exactly; Google signs none; Usher's grant takes any network.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            Self::Akamai(s) => Capabilities {
                session: true,
                client_v4: AddressBinding::Fixed(32),
                client_v6: AddressBinding::Fixed(128),
                client_ip_required: false,
                starts_at: true,
                prefix: s.token_kind() == TokenKind::Acl,
            },
            Self::Cloudfront(_) => Capabilities {
                session: false,
                client_v4: AddressBinding::Network,
                client_v6: AddressBinding::None,
                client_ip_required: false,
                starts_at: true,
                prefix: true,
            },
            Self::Google(_) => Capabilities {
                session: false,
                client_v4: AddressBinding::None,
                client_v6: AddressBinding::None,
                client_ip_required: false,
                starts_at: false,
                prefix: true,
            },
            Self::Bunny(s) => s.capabilities(),
            Self::Nginx(s) => s.capabilities(),
            Self::CloudflareStream(s) => s.capabilities(),
            // one URL each, bound to nothing but its expiry
            Self::Cloudflare(_) | Self::Fastly(_) => Capabilities {
                session: false,
                client_v4: AddressBinding::None,
                client_v6: AddressBinding::None,
                client_ip_required: false,
                starts_at: false,
                prefix: false,
            },
            Self::Usher(_) => Capabilities {
                session: true,
                client_v4: AddressBinding::Network,
                client_v6: AddressBinding::Network,
                client_ip_required: false,
                starts_at: false,
                prefix: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_from_json_through_one_enum() {
        let pem = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
        let configs = [
            serde_json::json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899", "salt": "pepper"}),
            serde_json::json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem, "delivery": "cookies"}),
            serde_json::json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w=="}),
            serde_json::json!({"scheme": "bunny", "key": "SecurityKey", "delivery": "path"}),
            serde_json::json!({"scheme": "nginx", "secret": "secret", "expression": "$secure_link_expires$uri$remote_addr $secret"}),
            serde_json::json!({"scheme": "usher", "key": "usher-test-grant-key-0123456789abcdef"}),
            serde_json::json!({"scheme": "cloudflare", "secret": "SecurityKey-cf", "lifetime_s": 300}),
            serde_json::json!({"scheme": "cloudflare_stream", "key_id": "k1", "private_key_pem": pem}),
            serde_json::json!({"scheme": "fastly", "key": "iqFPeN2u+Z0Lm5IrsKaOFKRqEU5Gw8ePtaEkHZWuD24="}),
        ];
        for config in configs {
            let scheme: Scheme = serde_json::from_value(config.clone()).unwrap();
            let name = scheme.name();
            assert_eq!(config["scheme"], name);
            // No key material in Debug, for any scheme.
            let debug = format!("{scheme:?}");
            for secret in [
                "aabbccddeeff",
                "MIIEow",
                "nZtRoh",
                "SecurityKey",
                "usher-test-grant",
                "SecurityKey-cf",
                "iqFPeN",
            ] {
                assert!(!debug.contains(secret), "{name}: {debug}");
            }
            let signer = scheme.signer().unwrap();
            assert!(!format!("{signer:?}").contains("MIIEow"));
            let caps = signer.capabilities();
            let mut req = SignRequest::url("https://cdn.example/demo/master.m3u8", 2_000_000_000)
                .with_prefix("/demo/");
            if caps.session {
                req = req.for_session("s_0123456789abcdef0123456789abcdef");
            }
            if caps.client_ip() {
                req = req.for_client("192.0.2.1".parse().unwrap());
            }
            if !caps.prefix {
                req.prefix = None;
            }
            let signed = signer.sign(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                signed.url.starts_with("https://cdn.example/"),
                "{name}: {}",
                signed.url
            );
            // Deterministic for given times.
            assert_eq!(signer.sign(&req).unwrap(), signed);
        }
    }

    #[test]
    fn a_client_network_is_signed_only_where_the_scheme_can_express_it() {
        let pem = include_str!("../testdata/aws-sdk-js-v3-test-key.pem");
        let signer = |config: serde_json::Value| {
            serde_json::from_value::<Scheme>(config)
                .unwrap()
                .signer()
                .unwrap()
        };
        let akamai = signer(
            serde_json::json!({"scheme": "akamai", "key": "aabbccddeeff00112233445566778899"}),
        );
        let cloudfront = signer(
            serde_json::json!({"scheme": "cloudfront", "key_pair_id": "APKAEIBAERJR2EXAMPLE", "private_key_pem": pem}),
        );
        let bunny = signer(
            serde_json::json!({"scheme": "bunny", "key": "SecurityKey", "delivery": "path"}),
        );
        let google = signer(
            serde_json::json!({"scheme": "google", "key_name": "my-key", "key": "nZtRohdNF9m3cKM24IcK4w=="}),
        );
        let usher = signer(
            serde_json::json!({"scheme": "usher", "key": "usher-test-grant-key-0123456789abcdef"}),
        );
        let v4: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let v6: std::net::IpAddr = "2001:db8:85a3:1::7".parse().unwrap();
        let req = |ip, bits| {
            SignRequest::url("https://cdn.example/demo/master.m3u8", 2_000_000_000)
                .with_prefix("/demo/")
                .for_client_network(ip, bits)
        };
        let with_session = |r: SignRequest| r.for_session("s_0123456789abcdef0123456789abcdef");
        let cases: [(&str, &Signer, SignRequest, bool); 14] = [
            ("akamai /32", &akamai, req(v4, 32), true),
            ("akamai /24", &akamai, req(v4, 24), false),
            ("akamai /128", &akamai, req(v6, 128), true),
            ("akamai /64", &akamai, req(v6, 64), false),
            ("cloudfront /24", &cloudfront, req(v4, 24), true),
            ("cloudfront /8", &cloudfront, req(v4, 8), true),
            ("cloudfront v6", &cloudfront, req(v6, 64), false),
            ("bunny /32", &bunny, req(v4, 32), true),
            ("bunny /24", &bunny, req(v4, 24), false),
            ("bunny v6 /64", &bunny, req(v6, 64), true),
            ("bunny v6 /128", &bunny, req(v6, 128), false),
            ("google", &google, req(v4, 32), false),
            ("usher /24", &usher, with_session(req(v4, 24)), true),
            ("usher /33", &usher, with_session(req(v4, 33)), false),
        ];
        for (what, signer, req, ok) in cases {
            assert_eq!(signer.sign(&req).is_ok(), ok, "{what}");
        }
        assert!(matches!(
            usher.sign(&with_session(req(v4, 33))),
            Err(SignError::BadField { .. })
        ));
    }

    #[test]
    fn unknown_fields_and_schemes_are_refused() {
        assert!(
            serde_json::from_value::<Scheme>(
                serde_json::json!({"scheme": "limelight", "key": "x"})
            )
            .is_err()
        );
        assert!(
            serde_json::from_value::<Scheme>(
                serde_json::json!({"scheme": "bunny", "key": "x", "kee": "y"})
            )
            .is_err()
        );
        let bad =
            serde_json::from_value::<Scheme>(serde_json::json!({"scheme": "akamai", "key": "zz"}))
                .unwrap();
        assert_eq!(
            bad.signer().err(),
            Some(SignError::BadKey("Akamai keys are hex"))
        );
    }
}
