//! The token index: the ticket a token's keyed hash names, kept in memory and built at open from the
//! tickets themselves (schema 4; schema 3 kept it as a table of its own).
//!
//! The table was keyed by the hash, which is random by design, so every registration inserted into a
//! random leaf page of it: reading, copying, checksumming and writing 4 KiB for a 64-byte entry, the
//! largest cost left in the group-commit leader once tickets were keyed by time (issue 16). Every ticket
//! record holds its token's hash, so the index is derived data: a crash loses nothing, and opening the
//! store rebuilds it by reading every ticket once.
//!
//! An entry is the hash's first eight bytes ([`SecretHash::prefix`]) and the ticket's key in the tickets
//! table as 12 bytes: 24 bytes, about 30 to 55 in the hash table depending on how full it is. Two hashes
//! alike in their first eight bytes both stay (a lookup yields every candidate and the caller compares
//! the full hash, in constant time, against each ticket it reads).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use usher_core::secret::SecretHash;
use usher_core::store::StoreError;

/// A ticket's key in the tickets table (`ticket_key`'s 24 hex digits) as bytes.
pub(super) type TicketKey = [u8; 12];

/// The ticket key `key` (24 hex digits) as bytes.
///
/// # Errors
/// [`StoreError::Corrupt`] for a key that is not 24 hex digits.
pub(super) fn key_bytes(key: &str) -> Result<TicketKey, StoreError> {
    let mut out = [0u8; 12];
    hex::decode_to_slice(key, &mut out)
        .map_err(|e| StoreError::Corrupt(format!("the tickets table holds key {key:?} ({e})")))?;
    Ok(out)
}

/// `key` as the text the tickets table is keyed by.
pub(super) fn key_text(key: &TicketKey) -> String {
    usher_core::ids::lower_hex(key)
}

/// The tickets of one prefix: nearly always one.
enum Keys {
    One(TicketKey),
    /// A thin pointer, so that every entry stays 16 bytes (a `Vec` or a boxed slice would make it 24
    /// or 32).
    #[expect(
        clippy::box_collection,
        reason = "a thin pointer keeps the enum, and every entry, at 16 bytes"
    )]
    Many(Box<Vec<TicketKey>>),
}

/// Token hash prefix → the keys of the tickets whose token hash begins with it.
#[derive(Default)]
pub(super) struct TokenIndex {
    map: HashMap<u64, Keys>,
}

impl TokenIndex {
    /// An empty index with room for `n` tickets.
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            map: HashMap::with_capacity(n),
        }
    }

    /// Notes that the ticket under `key` holds a token whose hash is `hash`.
    pub(super) fn insert(&mut self, hash: &SecretHash, key: TicketKey) {
        self.insert_at(hash.prefix(), key);
    }

    fn insert_at(&mut self, prefix: u64, key: TicketKey) {
        match self.map.entry(prefix) {
            Entry::Vacant(v) => {
                v.insert(Keys::One(key));
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                Keys::One(first) if *first == key => {}
                Keys::One(first) => {
                    let first = *first;
                    o.insert(Keys::Many(Box::new(vec![first, key])));
                }
                Keys::Many(keys) => {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            },
        }
    }

    /// The keys of the tickets that may hold a token hashed to `hash` (every one whose hash begins as
    /// it does): the caller reads them and compares the whole hash.
    pub(super) fn candidates(&self, hash: &SecretHash) -> &[TicketKey] {
        match self.map.get(&hash.prefix()) {
            None => &[],
            Some(Keys::One(k)) => std::slice::from_ref(k),
            Some(Keys::Many(keys)) => keys.as_slice(),
        }
    }

    /// Moves every entry of `other` into this index.
    pub(super) fn absorb(&mut self, other: TokenIndex) {
        self.map.reserve(other.map.len());
        for (prefix, keys) in other.map {
            match keys {
                Keys::One(k) => self.insert_at(prefix, k),
                Keys::Many(ks) => {
                    for k in *ks {
                        self.insert_at(prefix, k);
                    }
                }
            }
        }
    }

    /// Tokens indexed (tickets).
    pub(super) fn len(&self) -> usize {
        self.map
            .values()
            .map(|k| match k {
                Keys::One(_) => 1,
                Keys::Many(ks) => ks.len(),
            })
            .sum()
    }

    /// Whether nothing is indexed.
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(hex_digits: &str) -> SecretHash {
        SecretHash::try_from(format!("{hex_digits:0<64}")).unwrap()
    }

    #[test]
    fn an_entry_takes_24_bytes() {
        assert_eq!(std::mem::size_of::<Keys>(), 16);
        assert_eq!(std::mem::size_of::<(u64, Keys)>(), 24);
    }

    #[test]
    fn hashes_alike_in_their_first_eight_bytes_keep_every_ticket() {
        let mut index = TokenIndex::default();
        let (a, b) = (hash("0102030405060708aa"), hash("0102030405060708bb"));
        index.insert(&a, [1; 12]);
        index.insert(&b, [2; 12]);
        index.insert(&b, [2; 12]);
        assert_eq!(index.candidates(&a), &[[1; 12], [2; 12]]);
        assert_eq!(index.candidates(&b), &[[1; 12], [2; 12]]);
        assert_eq!(
            index.candidates(&hash("0102030405060709")),
            &[] as &[TicketKey]
        );
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn an_absorbed_index_adds_its_entries_and_keeps_the_others() {
        let mut committed = TokenIndex::default();
        committed.insert(&hash("11"), [1; 12]);
        let mut staged = TokenIndex::default();
        staged.insert(&hash("22"), [2; 12]);
        staged.insert(&hash("0011223344556677ff"), [3; 12]);
        staged.insert(&hash("0011223344556677fe"), [4; 12]);
        committed.absorb(staged);
        assert_eq!(committed.candidates(&hash("22")), &[[2; 12]]);
        assert_eq!(committed.candidates(&hash("11")), &[[1; 12]]);
        assert_eq!(
            committed.candidates(&hash("0011223344556677")),
            &[[3; 12], [4; 12]]
        );
        assert_eq!(committed.len(), 4);
    }

    #[test]
    fn ticket_keys_go_to_bytes_and_back() {
        let key = "0123456789abcdef01234567";
        assert_eq!(key_text(&key_bytes(key).unwrap()), key);
        assert!(matches!(key_bytes("t_0123"), Err(StoreError::Corrupt(_))));
    }
}
