//! Usher's own media grant: a short-lived, HMAC-signed permission for one session to fetch the files under
//! one path prefix from Usher's origin.
//!
//! Text form (one URL path segment, so relative playlist URIs inherit it):
//! `base64url(payload) "." base64url(HMAC-SHA256(key, base64url(payload)))` with
//! `payload = "1|" session "|" expiry-unix-seconds "|" prefix`. The prefix is relative, ends with `/`, and
//! names the show's stream folder (`demo/`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::UnixMs;
use crate::ids::SessionId;

/// Longest grant text accepted before any decoding.
pub const MAX_GRANT_LEN: usize = 600;

/// What a grant allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The session it was issued to.
    pub session: SessionId,
    /// When it stops being valid (whole seconds).
    pub expires_at: UnixMs,
    /// The path prefix it covers, relative, ending with `/`.
    pub prefix: String,
}

/// Why a grant is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Not of the grant's shape.
    #[error("malformed grant")]
    Malformed,
    /// The signature does not match (tampered, or another key).
    #[error("bad grant signature")]
    BadSignature,
    /// Past its expiry.
    #[error("grant expired")]
    Expired,
    /// The requested path is outside the grant's prefix.
    #[error("path outside the grant's prefix")]
    WrongPath,
}

/// Signs and checks grants with one key.
#[derive(Clone)]
pub struct GrantSigner {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantSigner(<key>)")
    }
}

impl GrantSigner {
    /// A signer with `key`.
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// The grant's text form.
    pub fn sign(&self, grant: &Grant) -> String {
        let payload = format!(
            "1|{}|{}|{}",
            grant.session,
            grant.expires_at.0.div_euclid(1000),
            grant.prefix
        );
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// Checks signature and expiry, and returns the grant.
    ///
    /// # Errors
    /// [`GrantError`] saying why it is refused.
    pub fn verify(&self, text: &str, now: UnixMs) -> Result<Grant, GrantError> {
        if text.len() > MAX_GRANT_LEN {
            return Err(GrantError::Malformed);
        }
        let (payload_b64, sig_b64) = text.split_once('.').ok_or(GrantError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|_| GrantError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(payload_b64.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| GrantError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| GrantError::Malformed)?;
        let payload = String::from_utf8(payload).map_err(|_| GrantError::Malformed)?;
        let mut parts = payload.splitn(4, '|');
        let (Some("1"), Some(session), Some(exp), Some(prefix)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(GrantError::Malformed);
        };
        let session = SessionId::parse(session).map_err(|_| GrantError::Malformed)?;
        let exp: i64 = exp.parse().map_err(|_| GrantError::Malformed)?;
        let expires_at = UnixMs(exp.saturating_mul(1000));
        if expires_at <= now {
            return Err(GrantError::Expired);
        }
        Ok(Grant {
            session,
            expires_at,
            prefix: prefix.to_owned(),
        })
    }
}

impl Grant {
    /// Checks that `path` (relative, already normalised) lies under the grant's prefix.
    ///
    /// # Errors
    /// [`GrantError::WrongPath`] otherwise.
    pub fn covers(&self, path: &str) -> Result<(), GrantError> {
        if self.prefix.ends_with('/') && path.starts_with(&self.prefix) {
            Ok(())
        } else {
            Err(GrantError::WrongPath)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            session: SessionId::generate(),
            expires_at: UnixMs(2_000_000_000_000),
            prefix: "demo/".into(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = GrantSigner::new(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1");
        let g = grant();
        let text = s.sign(&g);
        assert_eq!(s.verify(&text, UnixMs(0)), Ok(g.clone()));
        assert_eq!(
            s.verify(&text, UnixMs(2_000_000_000_000)),
            Err(GrantError::Expired)
        );
        let other = GrantSigner::new(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2");
        assert_eq!(
            other.verify(&text, UnixMs(0)),
            Err(GrantError::BadSignature)
        );
        let mut tampered = text.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.verify(std::str::from_utf8(&tampered).unwrap(), UnixMs(0)),
            Err(GrantError::BadSignature)
        );
        assert_eq!(s.verify("nodot", UnixMs(0)), Err(GrantError::Malformed));
        assert_eq!(
            s.verify(&"a".repeat(700), UnixMs(0)),
            Err(GrantError::Malformed)
        );
        assert!(g.covers("demo/360p/seg_001.ts").is_ok());
        assert_eq!(
            g.covers("demoX/360p/seg_001.ts"),
            Err(GrantError::WrongPath)
        );
        assert_eq!(g.covers("other/x.ts"), Err(GrantError::WrongPath));
    }
}
