//! Validated identifiers and the ticket token.
//!
//! Every identifier that reaches the domain went through one of the `parse` functions here, so hostile
//! input (huge, non-ASCII, control characters, path separators) is refused at the edge with a reason.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// Why a piece of text is not a valid identifier or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Shorter than the minimum or longer than the maximum length.
    #[error("{what} must be {min} to {max} characters long")]
    Length {
        /// What was being parsed.
        what: &'static str,
        /// Minimum length.
        min: usize,
        /// Maximum length.
        max: usize,
    },
    /// Holds a character outside the allowed set.
    #[error("{what} may only contain {allowed}")]
    Charset {
        /// What was being parsed.
        what: &'static str,
        /// The allowed characters, in words.
        allowed: &'static str,
    },
}

fn check(
    s: &str,
    what: &'static str,
    min: usize,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), IdError> {
    if s.len() < min || s.len() > max {
        return Err(IdError::Length { what, min, max });
    }
    if !s.bytes().all(ok) {
        return Err(IdError::Charset { what, allowed });
    }
    Ok(())
}

fn slug_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
}

fn url_safe_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// `n` random bytes, base64url without padding.
pub fn random_b64(n: usize) -> String {
    with_random_bytes(n, |b| URL_SAFE_NO_PAD.encode(b))
}

/// `n` random bytes, lower-case hex.
pub fn random_hex(n: usize) -> String {
    with_random_bytes(n, lower_hex)
}

/// `bytes` as lower-case hex, written into the string's buffer at once (`hex::encode` collects the
/// digits char by char, growing the string as it goes: ~1.4 % of a heartbeat's instructions on Redis,
/// which writes four hashes and ids as hex).
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut digits = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut digits).expect("two digits a byte");
    String::from_utf8(digits).expect("hex digits are ASCII")
}

/// Hands `n` random bytes to `f`: from the thread's cryptographically secure generator (rand's
/// `ThreadRng`: ChaCha12, seeded from the operating system and reseeded every 64 KiB and after a fork),
/// not from the operating system on each call, which cost a `getrandom` system call per secret (1.3 % of
/// a saturated heartbeat, BENCHMARKS.md issue 16's twelfth step). Secrets of up to 64 bytes stay on the
/// stack.
fn with_random_bytes<T>(n: usize, f: impl FnOnce(&[u8]) -> T) -> T {
    let mut rng = rand::thread_rng();
    let mut small = [0u8; 64];
    if n <= small.len() {
        let buf = &mut small[..n];
        rng.fill_bytes(buf);
        f(buf)
    } else {
        let mut buf = vec![0u8; n];
        rng.fill_bytes(&mut buf);
        f(&buf)
    }
}

/// Where the time in a ticket id ([`TicketId::generate_in`]) counts from: 2024-01-01 00:00 UTC, in
/// milliseconds since the Unix epoch.
pub const TICKET_ID_EPOCH_MS: u64 = 1_704_067_200_000;

/// Refuses a shard name that is not two lower-case hex digits.
fn assert_shard(shard: &str) {
    assert!(
        shard.len() == 2
            && shard
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "a shard is two lower-case hex digits"
    );
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $pattern:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        // written as the text it holds, borrowed (`into = "String"` cloned the id for every answer
        // and every record that names it)
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        // the API document names the id's form, so a client can check it before asking
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .description(Some($what))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

string_id!(
    /// A show's id, chosen by the admin: 1–64 of `a-z 0-9 - _`.
    ShowId,
    "^[a-z0-9_-]{1,64}$",
    "A show's id, chosen by the admin."
);
string_id!(
    /// A ticket's non-secret id, made by Usher: `t_` and 24 hex digits.
    TicketId,
    "^t_[0-9a-f]{24}$",
    "A ticket's non-secret id, made by Usher."
);
string_id!(
    /// A playback session's id, made by Usher: `s_` and 32 hex digits, 128 random bits, or on Redis the
    /// ticket's shard and 120 random bits (`SessionId::generate_in`).
    SessionId,
    "^s_[0-9a-f]{32}$",
    "A playback session's id, made by Usher."
);
string_id!(
    /// A device's id from its long-lived cookie or the `X-Usher-Device` header: 8–64 of `A-Z a-z 0-9 - _`.
    DeviceId,
    "^[A-Za-z0-9_-]{8,64}$",
    "A device's id (cookie `usher_device` or header `X-Usher-Device`)."
);
string_id!(
    /// An API key's public id: `k_` and 16 hex digits.
    ApiKeyId,
    "^k_[0-9a-f]{16}$",
    "An API key's public id."
);
string_id!(
    /// A CDN's id in the pool, chosen by the admin: 1–64 of `a-z 0-9 - _` (`origin` is Usher's own).
    CdnId,
    "^[a-z0-9_-]{1,64}$",
    "A CDN's id in the pool (`origin` is Usher's own)."
);

string_id!(
    /// A content key's id, made by the packager with 128 random bits: `ck_` and 32 hex digits. It names the
    /// key in `EXT-X-KEY` URIs (`/keys/{id}`), which media playlists on every CDN carry, so it is public.
    ContentKeyId,
    "^ck_[0-9a-f]{32}$",
    "A content key's id (public: media playlists name it)."
);

impl ContentKeyId {
    /// A fresh content key id with 128 random bits.
    pub fn generate() -> Self {
        Self(format!("ck_{}", random_hex(16)))
    }

    /// Parses a content key id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `ck_` and 32 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "ck_", 32, "content key id")?;
        Ok(Self(s.to_owned()))
    }
}

string_id!(
    /// A webhook endpoint's id, made by Usher: `wh_` and 16 hex digits.
    WebhookId,
    "^wh_[0-9a-f]{16}$",
    "A webhook endpoint's id."
);

impl WebhookId {
    /// A fresh webhook endpoint id.
    pub fn generate() -> Self {
        Self(format!("wh_{}", random_hex(8)))
    }

    /// Parses a webhook endpoint id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `wh_` and 16 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "wh_", 16, "webhook id")?;
        Ok(Self(s.to_owned()))
    }
}

string_id!(
    /// One delivery of one event to one endpoint, made by Usher: `dl_` and 24 hex digits.
    DeliveryId,
    "^dl_[0-9a-f]{24}$",
    "A webhook delivery's id."
);

impl DeliveryId {
    /// A fresh delivery id.
    pub fn generate() -> Self {
        Self(format!("dl_{}", random_hex(12)))
    }

    /// Parses a delivery id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `dl_` and 24 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "dl_", 24, "delivery id")?;
        Ok(Self(s.to_owned()))
    }
}

impl CdnId {
    /// Parses an admin-chosen CDN id.
    ///
    /// # Errors
    /// [`IdError`] when the text is empty, too long or has other characters than `a-z 0-9 - _`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check(s, "CDN id", 1, 64, "a-z, 0-9, '-' and '_'", slug_byte)?;
        Ok(Self(s.to_owned()))
    }

    /// Usher's own origin, always a member of the pool.
    pub fn origin() -> Self {
        Self("origin".to_owned())
    }

    /// Whether this is Usher's own origin.
    pub fn is_origin(&self) -> bool {
        self.0 == "origin"
    }
}

impl ShowId {
    /// Parses an admin-chosen show id.
    ///
    /// # Errors
    /// [`IdError`] when the text is empty, too long or has other characters than `a-z 0-9 - _`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check(s, "show id", 1, 64, "a-z, 0-9, '-' and '_'", slug_byte)?;
        Ok(Self(s.to_owned()))
    }
}

fn prefixed_hex(s: &str, prefix: &str, hex_len: usize, what: &'static str) -> Result<(), IdError> {
    let len = prefix.len() + hex_len;
    if s.len() != len {
        return Err(IdError::Length {
            what,
            min: len,
            max: len,
        });
    }
    let hex_ok = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.starts_with(prefix) && s.as_bytes()[prefix.len()..].iter().all(|&b| hex_ok(b)) {
        Ok(())
    } else {
        Err(IdError::Charset {
            what,
            allowed: "its prefix and lower-case hex digits",
        })
    }
}

impl TicketId {
    /// A fresh random ticket id, for tests and tools: a registered ticket's id comes from
    /// [`TicketId::generate_in`].
    pub fn generate() -> Self {
        Self(format!("t_{}", random_hex(12)))
    }

    /// A fresh ticket id in the shard `shard` (two lower-case hex digits: its token's keyed hash's
    /// `SecretHash::shard`), then the time it was made and 48 random bits. The shard lets a store split
    /// into shards (Redis Cluster: docs/redis.md) find the ticket's shard from its token as well as from
    /// its id, and keep the token lookup, the ticket and its seats together; the first byte of a keyed
    /// hash tells nothing about the token without the hashing key. The time (milliseconds since
    /// [`TICKET_ID_EPOCH_MS`], 40 bits: it wraps in 2054, which only costs order) lets a store key tickets
    /// in the order they were made (the embedded store does): one registration after another then
    /// writes to the same few pages of a B-tree, not to a random page each. A ticket id is not a secret
    /// (the ticket's `created_at` says the same); the token is.
    ///
    /// # Panics
    /// When `shard` is not two lower-case hex digits (a caller's bug).
    pub fn generate_in(shard: &str) -> Self {
        assert_shard(shard);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let ms = u64::try_from(now).unwrap_or(u64::MAX);
        let at = ms.saturating_sub(TICKET_ID_EPOCH_MS) & ((1 << 40) - 1);
        Self(format!("t_{shard}{at:010x}{}", random_hex(6)))
    }

    /// The ticket's shard: its first two hex digits (see [`TicketId::generate_in`]).
    pub fn shard(&self) -> &str {
        &self.0[2..4]
    }

    /// Parses a ticket id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `t_` and 24 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "t_", 24, "ticket id")?;
        Ok(Self(s.to_owned()))
    }
}

impl SessionId {
    /// A fresh session id with 128 random bits.
    pub fn generate() -> Self {
        Self(format!("s_{}", random_hex(16)))
    }

    /// A fresh session id in the shard `shard` (two lower-case hex digits, its ticket's
    /// [`TicketId::shard`]) with 120 random bits, so that a store split into shards finds a session's
    /// ticket on the session's own shard.
    ///
    /// # Panics
    /// When `shard` is not two lower-case hex digits (a caller's bug).
    pub fn generate_in(shard: &str) -> Self {
        assert_shard(shard);
        Self(format!("s_{shard}{}", random_hex(15)))
    }

    /// The session's shard: its first two hex digits (see [`SessionId::generate_in`]).
    pub fn shard(&self) -> &str {
        &self.0[2..4]
    }

    /// Parses a session id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `s_` and 32 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "s_", 32, "session id")?;
        Ok(Self(s.to_owned()))
    }
}

impl ApiKeyId {
    /// A fresh API key id.
    pub fn generate() -> Self {
        Self(format!("k_{}", random_hex(8)))
    }

    /// Parses an API key id.
    ///
    /// # Errors
    /// [`IdError`] unless the text is `k_` and 16 lower-case hex digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        prefixed_hex(s, "k_", 16, "API key id")?;
        Ok(Self(s.to_owned()))
    }
}

impl DeviceId {
    /// A fresh device id with 128 random bits.
    pub fn generate() -> Self {
        Self(random_b64(16))
    }

    /// Parses a device id from a cookie or header.
    ///
    /// # Errors
    /// [`IdError`] when the text is not 8–64 characters of `A-Z a-z 0-9 - _`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check(s, "device id", 8, 64, "A-Z, a-z, 0-9, '-' and '_'", |b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
        })?;
        Ok(Self(s.to_owned()))
    }
}

/// A ticket's secret token. It has no `Display`, and `Debug` prints a placeholder, so it cannot reach a log
/// by accident; logs name a ticket by its id or by `secret::short_hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketToken(String);

impl TicketToken {
    /// Shortest token a ticket site may choose.
    pub const MIN_LEN: usize = 16;
    /// Longest token a ticket site may choose.
    pub const MAX_LEN: usize = 128;

    /// A fresh token with 256 random bits (43 base64url characters).
    pub fn generate() -> Self {
        Self(random_b64(32))
    }

    /// Parses a token chosen by the ticket site: 16–128 URL-safe characters (`A-Z a-z 0-9 - _ . ~`), so it
    /// travels in a watch link without escaping.
    ///
    /// # Errors
    /// [`IdError`] for any other text.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check(
            s,
            "token",
            Self::MIN_LEN,
            Self::MAX_LEN,
            "A-Z, a-z, 0-9, '-', '_', '.' and '~'",
            url_safe_byte,
        )?;
        Ok(Self(s.to_owned()))
    }

    /// The secret itself; only for hashing and for the one answer that hands it to the ticket site.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TicketToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_hex_writes_what_hex_encode_writes() {
        let bytes: Vec<u8> = (0..=255).collect();
        for n in [0, 1, 2, 31, 32, 256] {
            assert_eq!(lower_hex(&bytes[..n]), hex::encode(&bytes[..n]));
        }
    }

    #[test]
    fn random_text_has_its_length_on_the_stack_and_off_it_and_never_repeats() {
        for n in [1, 6, 16, 32, 64, 65, 200] {
            let (a, b) = (random_hex(n), random_hex(n));
            assert_eq!((a.len(), b.len()), (2 * n, 2 * n));
            // one byte repeats once in 256 draws; six or more, once in 2^48 or rarer
            if n >= 6 {
                assert_ne!(a, b, "{n} random bytes twice alike");
            }
            let decoded = URL_SAFE_NO_PAD.decode(random_b64(n)).unwrap();
            assert_eq!(decoded.len(), n);
        }
        // all 256 byte values turn up: the bytes are not left zero past some length
        let mut seen = [false; 256];
        for _ in 0..64 {
            for b in hex::decode(random_hex(200)).unwrap() {
                seen[usize::from(b)] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn hostile_text_is_refused() {
        assert!(ShowId::parse("").is_err());
        assert!(ShowId::parse("../etc").is_err());
        assert!(ShowId::parse(&"a".repeat(65)).is_err());
        assert!(ShowId::parse("Show").is_err());
        assert!(TicketToken::parse("short").is_err());
        assert!(TicketToken::parse(&"x".repeat(129)).is_err());
        assert!(TicketToken::parse("abcdefghijklmnop\n").is_err());
        assert!(TicketToken::parse("abcdefghijklmnopé").is_err());
        assert!(TicketToken::parse("abcdefgh/ijklmnop").is_err());
        assert!(TicketId::parse("t_00112233445566778899aabX").is_err());
        assert!(SessionId::parse("s_0011").is_err());
    }

    #[test]
    fn generated_ids_parse() {
        assert!(TicketId::parse(TicketId::generate().as_str()).is_ok());
        assert!(SessionId::parse(SessionId::generate().as_str()).is_ok());
        assert!(DeviceId::parse(DeviceId::generate().as_str()).is_ok());
        assert!(ApiKeyId::parse(ApiKeyId::generate().as_str()).is_ok());
        let t = TicketToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(TicketToken::parse(t.expose()).is_ok());
    }

    #[test]
    fn a_tickets_id_and_its_sessions_carry_its_tokens_shard() {
        let hasher = crate::secret::SecretHasher::new(b"ids-test-key-0123456789abcdef0123");
        for token in [
            "token-one-0000000001",
            "token-two-0000000002",
            "token-three-00000003",
        ] {
            let hash = hasher.ticket_token(&TicketToken::parse(token).unwrap());
            let id = TicketId::generate_in(&hash.shard());
            assert!(TicketId::parse(id.as_str()).is_ok(), "{id}");
            assert_eq!(id.shard(), &hash.to_hex()[..2]);
            assert_eq!(id.shard(), hash.shard());
            let session = SessionId::generate_in(id.shard());
            assert!(SessionId::parse(session.as_str()).is_ok(), "{session}");
            assert_eq!(session.shard(), id.shard());
        }
        // two ids of one token differ in their random part
        let hash = hasher.ticket_token(&TicketToken::parse("token-one-0000000001").unwrap());
        assert_ne!(
            TicketId::generate_in(&hash.shard()),
            TicketId::generate_in(&hash.shard())
        );
    }

    #[test]
    fn a_tickets_id_after_its_shard_counts_milliseconds_from_the_epoch() {
        let ms = |id: &TicketId| u64::from_str_radix(&id.as_str()[4..14], 16).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let first = TicketId::generate_in("7f");
        std::thread::sleep(std::time::Duration::from_millis(3));
        let second = TicketId::generate_in("00");
        let at = ms(&first) + TICKET_ID_EPOCH_MS;
        assert!(
            at.abs_diff(now) < 60_000,
            "{first}: {at} is not about {now}"
        );
        assert!(ms(&second) > ms(&first), "{first} then {second}");
        // after the shard, a later id sorts later, whatever the shards
        assert!(second.as_str()[4..] > first.as_str()[4..]);
    }

    #[test]
    fn token_debug_hides_the_secret() {
        let t = TicketToken::parse("secret-secret-secret").unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }
}
