//! Keyed hashing of secrets (ticket tokens, API keys) and constant-time comparison.
//!
//! The store only ever sees `SecretHash`es: HMAC-SHA256 under a server key from the configuration, so a
//! stolen database does not reveal tokens, and hashes cannot be precomputed without the key.

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::ids::{ApiKeyId, TicketToken, random_b64};

/// HMAC-SHA256 of a secret under the server's hashing key. Serialized as 64 lower-case hex digits in
/// text formats (JSON), written from and read into a buffer on the stack (a lease holds up to fifteen of
/// them, and the embedded store's flush writes every renewed lease each second: a `String` per hash each
/// way was most of that flush's allocations), and as its 32 bytes in binary ones (the embedded store's
/// renewal log).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl Serialize for SecretHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        let mut text = [0u8; 64];
        hex::encode_to_slice(self.0, &mut text).expect("64 digits for 32 bytes");
        s.serialize_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
    }
}

impl<'de> Deserialize<'de> for SecretHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HashForm;
        impl serde::de::Visitor<'_> for HashForm {
            type Value = SecretHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret hash: 64 hex digits, or 32 bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<SecretHash, E> {
                let bytes: [u8; 32] = b.try_into().map_err(|_| {
                    E::custom(format!("bad secret hash: {} bytes, not 32", b.len()))
                })?;
                Ok(SecretHash(bytes))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SecretHash, E> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|e| E::custom(format!("bad secret hash: {e}")))?;
                Ok(SecretHash(out))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(HashForm)
        } else {
            d.deserialize_bytes(HashForm)
        }
    }
}

impl SecretHash {
    /// Compares two hashes in constant time.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The hash as lower-case hex (a store key).
    pub fn to_hex(&self) -> String {
        crate::ids::lower_hex(&self.0)
    }

    /// The hash's first eight bytes as a number: a key for an index in memory, where eight bytes of a
    /// keyed hash tell tokens apart all but always (the full hash is compared after the lookup).
    pub fn prefix(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }

    /// The hash's shard: its first byte as two hex digits, one of 256 (a ticket's id begins with its
    /// token's: [`TicketId::generate_in`](crate::ids::TicketId::generate_in)).
    pub fn shard(&self) -> String {
        crate::ids::lower_hex(&self.0[..1])
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", &self.to_hex()[..8])
    }
}

impl From<SecretHash> for String {
    fn from(h: SecretHash) -> String {
        h.to_hex()
    }
}

impl TryFrom<String> for SecretHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&s, &mut out).map_err(|e| format!("bad secret hash: {e}"))?;
        Ok(Self(out))
    }
}

/// Hashes secrets under the server key, and while that key is rotated knows the key it replaces:
/// a secret stored before the rotation is found by its [`SecretHasher::previous`] hash.
#[derive(Clone)]
pub struct SecretHasher {
    mac: Hmac<Sha256>,
    previous: Option<Box<SecretHasher>>,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher(<key>)")
    }
}

impl SecretHasher {
    /// A hasher keyed with `key` (at least 32 bytes of secret material, checked by the configuration).
    pub fn new(key: &[u8]) -> Self {
        Self {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
            previous: None,
        }
    }

    /// The same hasher, knowing `previous` as the key being rotated out.
    #[must_use]
    pub fn with_previous(mut self, previous: &[u8]) -> Self {
        self.previous = Some(Box::new(Self::new(previous)));
        self
    }

    /// A hasher under the key being rotated out, while there is one: lookups that find nothing under
    /// the current key try its hash (new secrets are always hashed under the current key).
    pub fn previous(&self) -> Option<&SecretHasher> {
        self.previous.as_deref()
    }

    /// The hashes `secret` may be stored under: the current key's, then the previous key's.
    pub fn candidates(&self, hash: impl Fn(&SecretHasher) -> SecretHash) -> Vec<SecretHash> {
        let mut out = vec![hash(self)];
        if let Some(p) = self.previous() {
            out.push(hash(p));
        }
        out
    }

    fn hash(&self, domain: &[u8], secret: &[u8]) -> SecretHash {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(secret);
        SecretHash(mac.finalize().into_bytes().into())
    }

    /// The stored form of a ticket token.
    pub fn ticket_token(&self, token: &TicketToken) -> SecretHash {
        self.hash(b"ticket\0", token.expose().as_bytes())
    }

    /// The stored form of an API key's secret part.
    pub fn api_key_secret(&self, secret: &str) -> SecretHash {
        self.hash(b"api-key\0", secret.as_bytes())
    }

    /// The stored form of a show's stream key (the whole `{show}.{secret}` text of a `StreamKey`).
    pub fn stream_key(&self, key: &str) -> SecretHash {
        self.hash(b"stream-key\0", key.as_bytes())
    }

    /// The stored form of a CDN's origin-pull secret.
    pub fn origin_pull_secret(&self, secret: &str) -> SecretHash {
        self.hash(b"origin-pull\0", secret.as_bytes())
    }

    /// The stored form of a console session's cookie secret.
    pub fn console_session(&self, secret: &str) -> SecretHash {
        self.hash(b"console-session\0", secret.as_bytes())
    }

    /// The stored key of a TV sign-in code: its user code (canonical form). Keyed, so a copy of the store
    /// cannot be searched for the few billion codes there are.
    pub fn tv_user_code(&self, code: &crate::tv::UserCode) -> SecretHash {
        self.hash(b"tv-user-code\0", code.as_str().as_bytes())
    }

    /// The stored form of a TV's device secret (the random part of its device code).
    pub fn tv_device_secret(&self, code: &crate::tv::DeviceCode) -> SecretHash {
        self.hash(b"tv-device\0", code.secret().as_bytes())
    }

    /// The stored form of a session secret (`session_secret`).
    pub fn session_secret(&self, secret: &str) -> SecretHash {
        self.hash(b"session\0", secret.as_bytes())
    }

    /// Where a POST's `Idempotency-Key` is remembered: a keyed hash of the authenticated caller
    /// (`key:<API key id>` or `user:<name>`) and the key, so one caller's keys never meet another's.
    pub fn idempotency_key(&self, caller: &str, key: &str) -> SecretHash {
        let mut mac = self.mac.clone();
        mac.update(b"idempotency\0");
        mac.update(caller.as_bytes());
        mac.update(b"\0");
        mac.update(key.as_bytes());
        SecretHash(mac.finalize().into_bytes().into())
    }

    /// A short, non-reversible tag of a session id for logs (8 hex digits): logs can follow one session
    /// without carrying its id, which admins see in listings.
    pub fn session_tag(&self, session_id: &str) -> String {
        self.hash(b"session-log\0", session_id.as_bytes()).to_hex()[..8].to_owned()
    }

    /// The CSRF token of a console session (synchronizer token): derived from the session's cookie
    /// secret, so it is tied to that session, needs no storage, and cannot be forged without the server
    /// key. Compare with [`SecretHasher::check_csrf`].
    pub fn csrf_token(&self, session_secret: &str) -> String {
        self.hash(b"csrf\0", session_secret.as_bytes()).to_hex()
    }

    /// Whether `presented` is the CSRF token of the session, compared in constant time.
    pub fn check_csrf(&self, session_secret: &str, presented: &str) -> bool {
        let expected = self.csrf_token(session_secret);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// A short, non-reversible tag of a token for logs (8 hex digits of a separate keyed hash).
    pub fn log_tag(&self, token: &TicketToken) -> String {
        self.hash(b"log\0", token.expose().as_bytes()).to_hex()[..8].to_owned()
    }
}

/// An API key as handed to its holder once: `usher_<key id>_<secret>`.
#[derive(Clone)]
pub struct ApiKeySecret {
    /// The public id, which the store indexes.
    pub id: ApiKeyId,
    /// The secret part, which the store keeps only hashed.
    pub secret: String,
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeySecret({}, <redacted>)", self.id)
    }
}

impl ApiKeySecret {
    /// A new key with 256 random bits of secret.
    pub fn generate() -> Self {
        Self {
            id: ApiKeyId::generate(),
            secret: random_b64(32),
        }
    }

    /// The full text the holder sends as `Authorization: Bearer …`.
    pub fn to_bearer(&self) -> String {
        format!("usher_{}_{}", self.id, self.secret)
    }

    /// Splits a bearer text into id and secret; `None` when it has not the shape of a key.
    pub fn parse(bearer: &str) -> Option<Self> {
        let rest = bearer.strip_prefix("usher_")?;
        let (id, secret) = rest.split_at_checked(18)?;
        let secret = secret.strip_prefix('_')?;
        let id = ApiKeyId::parse(id).ok()?;
        if secret.len() != 43
            || !secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        Some(Self {
            id,
            secret: secret.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_round_trip_and_reject_junk() {
        let k = ApiKeySecret::generate();
        let parsed = ApiKeySecret::parse(&k.to_bearer()).unwrap();
        assert_eq!(parsed.id, k.id);
        assert_eq!(parsed.secret, k.secret);
        assert!(ApiKeySecret::parse("usher_k_00").is_none());
        assert!(ApiKeySecret::parse("").is_none());
        assert!(ApiKeySecret::parse(&format!("usher_{}_{}", k.id, "é".repeat(30))).is_none());
    }

    #[test]
    fn a_hash_is_64_hex_digits_in_json_and_junk_is_refused() {
        let h = SecretHasher::new(&[3u8; 32]).api_key_secret("a key");
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert!(serde_json::from_str::<SecretHash>(&json).unwrap().ct_eq(&h));
        // an escaped form of the same digits is the same hash
        let escaped = format!(
            "\"\\u00{:x}{}\"",
            json.as_bytes()[1],
            &json[2..json.len() - 1]
        );
        assert!(
            serde_json::from_str::<SecretHash>(&escaped)
                .unwrap()
                .ct_eq(&h)
        );
        for junk in [
            "\"\"".to_owned(),
            format!("\"{}\"", &h.to_hex()[..62]),
            format!("\"{}00\"", h.to_hex()),
            format!("\"{}zz\"", &h.to_hex()[..62]),
            "42".to_owned(),
            "null".to_owned(),
        ] {
            let e = serde_json::from_str::<SecretHash>(&junk).unwrap_err();
            assert!(e.to_string().contains("secret hash"), "{junk}: {e}");
        }
    }

    #[test]
    fn hashes_depend_on_key_and_domain() {
        let a = SecretHasher::new(b"0123456789abcdef0123456789abcdef");
        let b = SecretHasher::new(b"fedcba9876543210fedcba9876543210");
        let t = TicketToken::parse("the-token-of-a-ticket").unwrap();
        assert!(a.ticket_token(&t).ct_eq(&a.ticket_token(&t)));
        assert!(!a.ticket_token(&t).ct_eq(&b.ticket_token(&t)));
        assert_ne!(
            a.ticket_token(&t).to_hex(),
            a.api_key_secret(t.expose()).to_hex()
        );
    }
}
