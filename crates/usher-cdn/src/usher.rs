//! Usher's own media grant, as one scheme among the CDNs': a thin adapter over
//! [`usher_core::grant::GrantSigner`], so Usher's origin is reachable through the same [`crate::Scheme`].
//!
//! Followed: Usher's grant format (`usher_core::grant`): one path segment
//! `base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload)))` with
//! `payload = "1|" session "|" expiry "|" prefix`; the origin serves `/o/{grant}/{path}`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use usher_core::clock::UnixMs;
use usher_core::grant::{Grant, GrantSigner};
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
    /// folder), in the URL `/o/{grant}/{path}`.
    ///
    /// # Errors
    /// [`SignError::Missing`] without a session; [`SignError::Unsupported`] for an address or a start time;
    /// [`SignError::BadPath`] when the resource is not under the prefix, or it or the prefix is not a
    /// media path (`usher_core::media_path::MediaPath`) that the origin would serve.
    pub fn sign(&self, req: &SignRequest) -> Result<Signed, SignError> {
        if req.client_ip.is_some() {
            return Err(SignError::Unsupported {
                scheme: SCHEME,
                what: "a client address",
            });
        }
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
            client: None,
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
        assert!(
            s.sign(
                &SignRequest::path("/demo/a.ts", 10)
                    .for_session(SESSION)
                    .for_client("127.0.0.1".parse().unwrap())
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
