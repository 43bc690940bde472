//! The key-encryption key: content keys wrapped with AES-256-GCM for the store, and this node's memory of
//! the keys it unwrapped (see the parent module).

use std::collections::HashMap;
use std::sync::RwLock;

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::rand::{SecureRandom as _, SystemRandom};
use usher_core::content_key::{ContentKey, ContentKeyRecord};
use usher_core::ids::ContentKeyId;

use crate::service::seal::derive_key;
use crate::service::{Error, Result};

/// The first byte of a wrapped key: the wrapping's format.
const WRAP_VERSION: u8 = 1;
/// Most unwrapped keys a node keeps in memory (16 bytes each, plus the folder).
const CACHE_MAX: usize = 16_384;

/// The key-encryption key, and this node's memory of keys it unwrapped.
pub struct ContentKeys {
    kek: LessSafeKey,
    /// While `token_key` is rotated (and no `key_encryption_key` is set): the wrapping key derived from
    /// the token key being replaced, which still opens the keys wrapped before the rotation.
    previous: Option<LessSafeKey>,
    rng: SystemRandom,
    clear: RwLock<HashMap<ContentKeyId, (String, ContentKey)>>,
}

impl std::fmt::Debug for ContentKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKeys(…)")
    }
}

/// The HKDF label of the wrapping key derived from `token_key`.
const FROM_TOKEN_KEY: &[u8] = b"usher content-key wrapping v1: derived from token_key";

impl ContentKeys {
    /// The wrapping key from `secrets.key_encryption_key` when set (`explicit`), else from
    /// `secrets.token_key`, each through HKDF-SHA256 with a label of its own.
    pub fn new(explicit: Option<&[u8]>, token_key: &[u8]) -> Self {
        let (ikm, label): (&[u8], &[u8]) = match explicit {
            Some(k) => (k, b"usher content-key wrapping v1: key_encryption_key"),
            None => (token_key, FROM_TOKEN_KEY),
        };
        Self {
            kek: derive_key(ikm, label),
            previous: None,
            rng: SystemRandom::new(),
            clear: RwLock::default(),
        }
    }

    /// The same keys, also opening keys wrapped under `previous_token_key` while `token_key` is rotated;
    /// nothing changes when the wrapping key comes from `secrets.key_encryption_key` (`explicit`).
    #[must_use]
    pub fn with_previous_token_key(mut self, explicit: bool, previous_token_key: &[u8]) -> Self {
        if !explicit {
            self.previous = Some(derive_key(previous_token_key, FROM_TOKEN_KEY));
        }
        self
    }

    fn aad(id: &ContentKeyId, stream_path: &str) -> Vec<u8> {
        format!("usher-content-key\0{id}\0{stream_path}").into_bytes()
    }

    /// `key` wrapped for `id` and `stream_path`: version, nonce, ciphertext and tag.
    ///
    /// # Errors
    /// `internal` when the system's generator fails.
    pub fn wrap(&self, id: &ContentKeyId, stream_path: &str, key: &ContentKey) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("the system's random generator failed".into()))?;
        let mut sealed = key.expose().to_vec();
        self.kek
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(id, stream_path)),
                &mut sealed,
            )
            .map_err(|_| Error::Internal("sealing a content key failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The key a record holds, for `id`.
    ///
    /// # Errors
    /// `internal` when it does not open: another key-encryption key (a changed `token_key` or
    /// `secrets.key_encryption_key`), or a record that was tampered with or moved.
    pub fn unwrap(&self, id: &ContentKeyId, record: &ContentKeyRecord) -> Result<ContentKey> {
        let fail = || {
            Error::Internal(format!(
                "content key {id} does not open under this key-encryption key (was secrets.key_encryption_key or secrets.token_key changed?)"
            ))
        };
        let w = &record.wrapped;
        if w.len() <= 1 + NONCE_LEN || w[0] != WRAP_VERSION {
            return Err(fail());
        }
        let open = |kek: &LessSafeKey| {
            let nonce = Nonce::try_assume_unique_for_key(&w[1..=NONCE_LEN]).ok()?;
            let mut sealed = w[1 + NONCE_LEN..].to_vec();
            let clear = kek
                .open_in_place(
                    nonce,
                    Aad::from(Self::aad(id, &record.stream_path)),
                    &mut sealed,
                )
                .ok()?;
            ContentKey::from_slice(clear)
        };
        open(&self.kek)
            .or_else(|| self.previous.as_ref().and_then(open))
            .ok_or_else(fail)
    }

    pub(super) fn cached(&self, id: &ContentKeyId) -> Option<(String, ContentKey)> {
        self.clear
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    pub(super) fn remember(&self, id: &ContentKeyId, stream_path: &str, key: &ContentKey) {
        let mut clear = self
            .clear
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if clear.len() >= CACHE_MAX {
            clear.clear();
        }
        clear.insert(id.clone(), (stream_path.to_owned(), key.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        keys: &ContentKeys,
        id: &ContentKeyId,
        path: &str,
        k: &ContentKey,
    ) -> ContentKeyRecord {
        ContentKeyRecord {
            stream_path: path.into(),
            wrapped: keys.wrap(id, path, k).unwrap(),
            created_at: usher_core::clock::UnixMs(0),
        }
    }

    #[test]
    fn a_wrapped_key_opens_only_under_its_kek_id_and_folder() {
        let token_key = b"token-key-0123456789abcdef0123456789";
        let keys = ContentKeys::new(None, token_key);
        let id = ContentKeyId::generate();
        let k = ContentKey::generate();
        let r = record(&keys, &id, "demo-aes", &k);
        assert_eq!(r.wrapped.len(), 1 + 12 + 16 + 16);
        assert!(!r.wrapped.windows(16).any(|w| w == k.expose()));
        assert!(keys.unwrap(&id, &r).unwrap().ct_eq(&k));
        // two wrappings of one key differ (fresh nonces)
        assert_ne!(record(&keys, &id, "demo-aes", &k).wrapped, r.wrapped);
        // another id, another folder, a flipped bit, another KEK: nothing opens
        assert!(keys.unwrap(&ContentKeyId::generate(), &r).is_err());
        let moved = ContentKeyRecord {
            stream_path: "other".into(),
            ..r.clone()
        };
        assert!(keys.unwrap(&id, &moved).is_err());
        let mut flipped = r.clone();
        flipped.wrapped[20] ^= 1;
        assert!(keys.unwrap(&id, &flipped).is_err());
        let explicit = ContentKeys::new(Some(b"kek-0123456789abcdef0123456789abcdef"), token_key);
        assert!(explicit.unwrap(&id, &r).is_err());
        assert!(ContentKeys::new(None, token_key).unwrap(&id, &r).is_ok());
    }

    #[test]
    fn during_a_token_key_rotation_keys_wrapped_before_still_open() {
        let (old, new) = (
            b"old-token-key-0123456789abcdef0123".as_slice(),
            b"new-token-key-0123456789abcdef0123".as_slice(),
        );
        let id = ContentKeyId::generate();
        let k = ContentKey::generate();
        let before = record(&ContentKeys::new(None, old), &id, "demo-aes", &k);
        assert!(ContentKeys::new(None, new).unwrap(&id, &before).is_err());
        let rotating = ContentKeys::new(None, new).with_previous_token_key(false, old);
        assert!(rotating.unwrap(&id, &before).unwrap().ct_eq(&k));
        // new keys are wrapped under the new token key only
        let after = record(&rotating, &id, "demo-aes", &k);
        assert!(ContentKeys::new(None, new).unwrap(&id, &after).is_ok());
        assert!(ContentKeys::new(None, old).unwrap(&id, &after).is_err());
        // with an explicit key-encryption key the token key plays no part
        let kek = b"kek-0123456789abcdef0123456789abcdef".as_slice();
        let explicit = ContentKeys::new(Some(kek), new).with_previous_token_key(true, old);
        assert!(explicit.unwrap(&id, &before).is_err());
    }
}
