//! Usher's own media grant, as one scheme among the CDNs': a thin adapter over
//! [`usher_core::grant::GrantSigner`], so Usher's origin is reachable through the same [`crate::Scheme`].
//!
//! Followed: Usher's grant format (`usher_core::grant`): one path segment
//! `base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload)))` with
//! `payload = "1|" session "|" expiry "|" prefix`, or with a client network
//! `payload = "2|" session "|" expiry "|" prefix "|" address "|" bits`; the origin serves `/o/{grant}/{path}`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use usher_core::clock::UnixMs;
use usher_core::grant::{ClientNetwork, Grant, GrantSigner};
use usher_core::ids::SessionId;
use usher_core::media_path::MediaPath;

use crate::error::SignError;
use crate::request::{SignRequest, Signed};
use crate::uri::{Target, prefix_path};

const SCHEME: &str = "Usher's grant";
/// Why a path is refused: what the origin serves.
const MEDIA_PATH: &str = "the origin serves media paths: relative, '/'-separated segments of A-Z, a-z, 0-9, '.', '_' and '-', none empty or starting with '.'";

/// Usher's origin: the grant key (the server's `secrets.grant_key`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsherParams {
    /// The grant key, as configured for the server.
    pub key: SecretString,
}

/// [`UsherParams`] ready to sign many requests.
#[derive(Debug)]
pub struct UsherSigner {
    signer: GrantSigner,
}

impl UsherSigner {
    /// Keys the signer.
    ///
    /// # Errors
    /// [`SignError::BadKey`] for an empty key.
    pub fn new(params: &UsherParams) -> Result<Self, SignError> {
        let key = params.key.expose_secret();
        if key.is_empty() {
            return Err(SignError::BadKey("empty"));
        }
        Ok(Self {
            signer: GrantSigner::new(key.as_bytes()),
        })
    }

    /// Signs one request: a grant for the request's session over its prefix (by default the resource's
    /// folder), in the URL `/o/{grant}/{path}`, bound to the client's network when the request names an
    /// address (its exact address, or [`SignRequest::client_network_bits`] around it).
    ///
    /// # Errors
    /// [`SignError::Missing`] without a session; [`SignError::Unsupported`] for a start time;
    /// [`SignError::BadPath`] when the resource is not under the prefix, or it or the prefix is not a
    /// media path (`usher_core::media_path::MediaPath`) that the origin would serve.
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
        let session = req.session_id.as_deref().ok_or(SignError::Missing {
            scheme: SCHEME,
            what: "a session",
        })?;
        let session = SessionId::parse(session).map_err(|_| SignError::BadField {
            field: "session",
            reason: "an Usher session id (s_ and 32 hex digits)",
        })?;
        let t = Target::parse(&req.resource)?;
        if t.query.is_some() {
            return Err(SignError::BadPath("the origin serves files: no query"));
        }
        // the origin serves only media paths (`usher_core::media_path`): a grant for anything else would
        // never be honoured
        let path = t.path.strip_prefix('/').unwrap_or(&t.path);
        if MediaPath::parse(path).is_err() {
            return Err(SignError::BadPath(MEDIA_PATH));
        }
        let prefix = match &req.prefix {
            Some(p) => prefix_path(p)?.trim_start_matches('/').to_owned(),
            None => match path.rfind('/') {
                Some(i) => path[..=i].to_owned(),
                None => return Err(SignError::BadPath("the resource must lie in a folder")),
            },
        };
        if prefix.is_empty() || !prefix.ends_with('/') || !path.starts_with(&prefix) {
            return Err(SignError::BadPath(
                "the resource must lie under the prefix, which ends with '/'",
            ));
        }
        if prefix
            .strip_suffix('/')
            .is_none_or(|folder| MediaPath::parse(folder).is_err())
        {
            return Err(SignError::BadPath(MEDIA_PATH));
        }
        let grant = self.signer.sign(&Grant {
            session,
            expires_at: UnixMs(req.expires_at.saturating_mul(1000)),
            prefix,
            // without network bits, the exact address (ClientNetwork::new caps the bits at the family's)
            client: req
                .client_ip
                .map(|ip| ClientNetwork::new(ip, req.client_network_bits.unwrap_or(128))),
        });
        Ok(Signed::url(format!("{}/o/{grant}/{path}", t.origin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "usher-test-grant-key-0123456789abcdef";
    const SESSION: &str = "s_0123456789abcdef0123456789abcdef";

    #[test]
    fn grant_url_known_answer_and_round_trip() {
        // Computed independently of usher-core (Python hmac/base64 over the documented format):
        // payload "1|s_0123456789abcdef0123456789abcdef|1700003600|demo/".
        let want = "MXxzXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmfDE3MDAwMDM2MDB8ZGVtby8.HAAiy4vXYCWyvVr4pFOjaV3kusEtlsO_0tIUn5_EYKM";
        let s = UsherSigner::new(&UsherParams { key: KEY.into() }).unwrap();
        let signed = s
            .sign(
                &SignRequest::url("https://usher.example/demo/master.m3u8", 1_700_003_600)
                    .for_session(SESSION),
            )
            .unwrap();
        assert_eq!(
            signed.url,
            format!("https://usher.example/o/{want}/demo/master.m3u8")
        );
        let g = GrantSigner::new(KEY.as_bytes())
            .verify(want, UnixMs(0))
            .unwrap();
        assert_eq!(g.prefix, "demo/");
        assert!(g.covers("demo/360p/seg_001.ts").is_ok());
    }

    #[test]
    fn an_address_binds_the_grant_to_it_or_its_network() {
        let s = UsherSigner::new(&UsherParams { key: KEY.into() }).unwrap();
        let verifier = GrantSigner::new(KEY.as_bytes());
        let grant_of = |req: SignRequest| {
            let url = s.sign(&req.for_session(SESSION)).unwrap().url;
            let token = url.split('/').nth(2).unwrap().to_owned();
            verifier.verify(&token, UnixMs(0)).unwrap()
        };
        let ip = "203.0.113.7".parse().unwrap();
        let exact = grant_of(SignRequest::path("/demo/a.ts", 10).for_client(ip));
        assert_eq!(exact.client, Some(ClientNetwork::new(ip, 32)));
        let net = grant_of(SignRequest::path("/demo/a.ts", 10).for_client_network(ip, 24));
        assert_eq!(net.client, Some(ClientNetwork::new(ip, 24)));
        assert!(net.admits_address("203.0.113.200".parse().unwrap()));
        assert!(!exact.admits_address("203.0.113.200".parse().unwrap()));
        assert_eq!(grant_of(SignRequest::path("/demo/a.ts", 10)).client, None);
    }

    #[test]
    fn refusals() {
        let s = UsherSigner::new(&UsherParams { key: KEY.into() }).unwrap();
        assert!(s.sign(&SignRequest::path("/demo/a.ts", 10)).is_err());
        assert!(
            s.sign(&SignRequest::path("/demo/a.ts", 10).for_session("nope"))
                .is_err()
        );
        assert!(
            s.sign(&SignRequest::path("/a.ts", 10).for_session(SESSION))
                .is_err()
        );
        assert!(
            s.sign(
                &SignRequest::path("/demo/a.ts", 10)
                    .for_session(SESSION)
                    .with_prefix("/other/")
            )
            .is_err()
        );
        assert!(UsherSigner::new(&UsherParams { key: "".into() }).is_err());
        // only what the origin serves: media paths, under a media-path folder
        for path in [
            "/demo/../etc/passwd",
            "/demo/.hidden",
            "//demo/a.ts",
            "/demo//a.ts",
            "/demo/a%20b.ts",
            "/demo\\a.ts",
        ] {
            assert!(
                s.sign(&SignRequest::path(path, 10).for_session(SESSION))
                    .is_err(),
                "{path}"
            );
        }
        assert!(
            s.sign(
                &SignRequest::path("/demo/.x/a.ts", 10)
                    .for_session(SESSION)
                    .with_prefix("/demo/.x/")
            )
            .is_err()
        );
        assert!(
            s.sign(
                &SignRequest::path("/demo/360p/a.ts", 10)
                    .for_session(SESSION)
                    .with_prefix("/demo/")
            )
            .is_ok()
        );
    }
}
