//! Content keys: the 16-byte AES-128 keys that encrypt a stream's HLS segments (DESIGN.md "Encryption and
//! keys"), and the record the store keeps of each: the stream folder it encrypts and the key wrapped
//! under the node's key-encryption key. The store never holds a key in clear; wrapping is the server's
//! (`usher-server` `service/content_keys.rs`), so this crate stays free of the cipher.

use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;

/// Bytes of an AES-128 content key.
pub const CONTENT_KEY_LEN: usize = 16;

/// A content key in clear. It has no `Display`, `Debug` prints a placeholder and it is not `Serialize`,
/// so it can reach neither a log nor a stored record nor an answer by accident: the key endpoint writes
/// [`ContentKey::expose`] as its body, and the packager writes it into ffmpeg's key file.
#[derive(Clone, PartialEq, Eq)]
pub struct ContentKey([u8; CONTENT_KEY_LEN]);

impl ContentKey {
    /// A fresh key of 16 bytes from the operating system's generator.
    pub fn generate() -> Self {
        let mut k = [0u8; CONTENT_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// A key from its bytes; `None` unless there are exactly 16.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; CONTENT_KEY_LEN]>::try_from(bytes).ok().map(Self)
    }

    /// A key from 32 hex digits (either case); `None` otherwise.
    pub fn from_hex(text: &str) -> Option<Self> {
        hex::decode(text).ok().and_then(|b| Self::from_slice(&b))
    }

    /// The key's bytes, for the key endpoint's body, the packager's key file and the wrapping cipher.
    pub fn expose(&self) -> &[u8; CONTENT_KEY_LEN] {
        &self.0
    }

    /// Equality in constant time (a comparison of secrets must not leak where they differ).
    pub fn ct_eq(&self, other: &Self) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(…)")
    }
}

/// What the store keeps of a content key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentKeyRecord {
    /// The stream folder (a show's `stream_path`) whose segments the key encrypts: only a session of a
    /// show streaming from this folder gets the key.
    pub stream_path: String,
    /// The key wrapped under the key-encryption key (an AEAD ciphertext whose associated data binds the
    /// key's id and folder), base64 in the stored JSON.
    #[serde(with = "b64")]
    pub wrapped: Vec<u8>,
    /// When it was registered.
    pub created_at: UnixMs,
}

/// Bytes as base64 text in stored JSON.
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }

    /// The same for optional bytes (`null` for none).
    pub(crate) mod option {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        use serde::{Deserialize as _, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            v: &Option<Vec<u8>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match v {
                Some(b) => s.serialize_some(&STANDARD.encode(b)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_prints_and_parses_only_16_bytes() {
        let k = ContentKey::generate();
        assert_eq!(format!("{k:?}"), "ContentKey(…)");
        assert!(
            ContentKey::from_hex(&hex::encode(k.expose()))
                .unwrap()
                .ct_eq(&k)
        );
        assert!(ContentKey::from_hex("00ff").is_none());
        assert!(ContentKey::from_hex(&"0g".repeat(16)).is_none());
        assert!(ContentKey::from_slice(&[0; 17]).is_none());
        assert_ne!(ContentKey::generate().expose(), k.expose());
    }

    #[test]
    fn records_keep_the_wrapped_bytes_as_base64() {
        let r = ContentKeyRecord {
            stream_path: "demo-aes".into(),
            wrapped: vec![1, 2, 255],
            created_at: UnixMs(5),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"AQL/\""), "{json}");
        assert_eq!(serde_json::from_str::<ContentKeyRecord>(&json).unwrap(), r);
    }
}
