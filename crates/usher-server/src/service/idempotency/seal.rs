//! The sealing of remembered answers (see the parent module): AES-256-GCM under a key derived from
//! `token_key`, the record's store key bound as associated data.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::service::{Error, Result};

/// An answer as it is replayed: status, the headers that describe it, the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Content-Type`, `Location` and the like (not cookies: a replay logs nobody in).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The sealing key of remembered answers.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        AES_256_GCM.key_len()
    }
}

impl Sealer {
    /// The sealing key, derived from `token_key` with a label of its own.
    pub fn new(token_key: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"usher").extract(token_key);
        let info = [b"usher idempotent answers v1".as_slice()];
        let okm = prk
            .expand(&info, KeyLen)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut bytes = [0u8; 32];
        okm.fill(&mut bytes)
            .expect("the output length matches the buffer");
        Self {
            key: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key"),
            ),
            rng: SystemRandom::new(),
        }
    }

    pub(super) fn seal(&self, store_key: &str, answer: &Answer) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("the system's random generator failed".into()))?;
        let mut buf = serde_json::to_vec(answer)
            .map_err(|e| Error::Internal(format!("an answer to remember: {e}")))?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::Internal("sealing an answer failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub(super) fn open(&self, store_key: &str, sealed: &[u8]) -> Result<Answer> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Internal("a remembered answer is too short".into()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Internal("a remembered answer's nonce".into()))?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(store_key.as_bytes()), &mut buf)
            .map_err(|_| {
                Error::Internal("a remembered answer does not open (token_key changed?)".into())
            })?;
        serde_json::from_slice(plain)
            .map_err(|e| Error::Internal(format!("a remembered answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_open_only_under_their_own_store_key() {
        let s = Sealer::new(b"test-token-key-0123456789abcdef0123456789");
        let a = Answer {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"token":"secret"}"#.to_vec(),
        };
        let sealed = s.seal("k1", &a).unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "no clear text in the record"
        );
        assert_eq!(s.open("k1", &sealed).unwrap(), a);
        assert!(s.open("k2", &sealed).is_err());
        let other = Sealer::new(b"another-token-key-0123456789abcdef01234567");
        assert!(other.open("k1", &sealed).is_err());
    }
}
