//! Sealing with AES-256-GCM under a key derived from `token_key` (HKDF-SHA256, a label per purpose), the
//! record's store key bound as associated data: what the store keeps for a moment and must not hold in
//! clear — the answers remembered under an `Idempotency-Key` (they may carry a ticket token), the ticket
//! token a TV sign-in code hands to its TV — opens only under this server's `token_key` and only as the
//! record it was sealed for.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::service::{Error, Result};

/// The label of remembered answers' key.
pub const IDEMPOTENT_ANSWERS: &[u8] = b"usher idempotent answers v1";
/// The label of the key of tokens that TV sign-in codes hand over.
pub const TV_APPROVALS: &[u8] = b"usher tv approvals v1";

/// A sealing key, for one purpose.
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

/// An AES-256-GCM key derived from `ikm` with HKDF-SHA256 (salt `usher`) and `label`: one key per
/// purpose from one secret (sealed records here, wrapped content keys).
pub fn derive_key(ikm: &[u8], label: &[u8]) -> LessSafeKey {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"usher").extract(ikm);
    let info = [label];
    let okm = prk
        .expand(&info, KeyLen)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut bytes = [0u8; 32];
    okm.fill(&mut bytes)
        .expect("the output length matches the buffer");
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES-256 key"))
}

impl Sealer {
    /// The sealing key of the purpose `label`, derived from `token_key`.
    pub fn new(token_key: &[u8], label: &[u8]) -> Self {
        Self {
            key: derive_key(token_key, label),
            rng: SystemRandom::new(),
        }
    }

    /// Seals `plain` for the record under `store_key`: nonce, then cipher text and tag.
    ///
    /// # Errors
    /// `internal` when the system's random generator or the cipher fails.
    pub fn seal(&self, store_key: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("the system's random generator failed".into()))?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(store_key.as_bytes()),
                &mut buf,
            )
            .map_err(|_| Error::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Sealer::seal`] sealed for `store_key`.
    ///
    /// # Errors
    /// `internal` when it was sealed for another record or under another `token_key`, or is cut short.
    pub fn open(&self, store_key: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Internal("a sealed record is too short".into()));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Internal("a sealed record's nonce".into()))?;
        let mut buf = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(store_key.as_bytes()), &mut buf)
            .map_err(|_| {
                Error::Internal("a sealed record does not open (token_key changed?)".into())
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_open_only_under_their_own_store_key_and_purpose() {
        let s = Sealer::new(
            b"test-token-key-0123456789abcdef0123456789",
            IDEMPOTENT_ANSWERS,
        );
        let a = br#"{"token":"secret"}"#.to_vec();
        let sealed = s.seal("k1", &a).unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "no clear text in the record"
        );
        assert_eq!(s.open("k1", &sealed).unwrap(), a);
        assert!(s.open("k2", &sealed).is_err());
        let other = Sealer::new(
            b"another-token-key-0123456789abcdef01234567",
            IDEMPOTENT_ANSWERS,
        );
        assert!(other.open("k1", &sealed).is_err());
        let tv = Sealer::new(b"test-token-key-0123456789abcdef0123456789", TV_APPROVALS);
        assert!(tv.open("k1", &sealed).is_err(), "another purpose's key");
    }
}
