//! Stream keys: the secret an encoder presents to publish a live show (DESIGN.md "Content in").
//!
//! A key reads `{show id}.{secret}`: the show id lets the ingest listener find the one stored hash to
//! compare against (no index of keys, no scan), and the secret (32 random bytes, base64url) is what
//! proves the right. Only the keyed hash of the whole key is stored ([`crate::secret::SecretHasher`]);
//! the key itself is shown once, when it is made.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::UnixMs;
use crate::ids::{ShowId, random_b64};
use crate::secret::SecretHash;

/// Random bytes in a key's secret part.
const SECRET_BYTES: usize = 32;
/// Longest key text looked at: a show id (64) and a dot and the secret (43); longer text is refused
/// before it is hashed.
pub const MAX_KEY_LEN: usize = 128;

/// A stream key in clear: only while it is being made (to show it once) or checked.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey {
    show: ShowId,
    text: String,
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamKey({}.<secret>)", self.show)
    }
}

impl StreamKey {
    /// A fresh key for `show`.
    pub fn generate(show: &ShowId) -> Self {
        Self {
            show: show.clone(),
            text: format!("{show}.{}", random_b64(SECRET_BYTES)),
        }
    }

    /// Reads a key an encoder presented: `None` unless it has the shape of one (the show id then the
    /// secret's base64url characters), so nothing else is hashed or looked up.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_KEY_LEN {
            return None;
        }
        let (show, secret) = text.split_once('.')?;
        let show = ShowId::parse(show).ok()?;
        let b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
        if secret.len() < 16 || !secret.bytes().all(b64) {
            return None;
        }
        Some(Self {
            show,
            text: text.to_owned(),
        })
    }

    /// The show the key names (not yet proven: compare the hash).
    pub fn show(&self) -> &ShowId {
        &self.show
    }

    /// The key's text, for the one answer that shows it and for hashing.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

/// What the store keeps of a show's stream key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamKeyRecord {
    /// The keyed hash of the whole key.
    pub hash: SecretHash,
    /// When it was made.
    pub created_at: UnixMs,
}

/// Where `now` lies against a show's publish window: from `lead_s` before `starts_at` to `margin_s` after
/// `ends_at` (both Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishWindow {
    /// Too early: publishing opens at the given time.
    Early(UnixMs),
    /// Inside: publishing closes at the given time.
    Open(UnixMs),
    /// Too late.
    Over,
}

/// The publish window check, one rule for the listener's accept and the cut at the window's end.
pub fn publish_window(
    starts_at: UnixMs,
    ends_at: UnixMs,
    lead_s: u64,
    margin_s: u64,
    now: UnixMs,
) -> PublishWindow {
    let opens = UnixMs(
        starts_at
            .0
            .saturating_sub((lead_s as i64).saturating_mul(1000)),
    );
    let closes = UnixMs(
        ends_at
            .0
            .saturating_add((margin_s as i64).saturating_mul(1000)),
    );
    if now.0 < opens.0 {
        PublishWindow::Early(opens)
    } else if now.0 >= closes.0 {
        PublishWindow::Over
    } else {
        PublishWindow::Open(closes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_and_differ() {
        let show = ShowId::parse("concert-1").unwrap();
        let a = StreamKey::generate(&show);
        let b = StreamKey::generate(&show);
        assert_ne!(a.expose(), b.expose());
        let parsed = StreamKey::parse(a.expose()).unwrap();
        assert_eq!(parsed, a);
        assert_eq!(parsed.show(), &show);
        assert!(!format!("{a:?}").contains(&a.expose()[12..]));
    }

    #[test]
    fn malformed_keys_are_refused_before_hashing() {
        for bad in [
            "",
            "concert",
            ".abcdefghijklmnopqrstu",
            "Concert.abcdefghijklmnopqrstu",
            "concert.short",
            "concert.abc/defghijklmnopqrstu",
            "concert.abcdefghijklmnopq rstu",
            &format!("concert.{}", "a".repeat(200)),
        ] {
            assert!(StreamKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_window_opens_early_and_closes_late() {
        let (s, e) = (UnixMs(100_000), UnixMs(200_000));
        assert_eq!(
            publish_window(s, e, 30, 10, UnixMs(69_999)),
            PublishWindow::Early(UnixMs(70_000))
        );
        assert_eq!(
            publish_window(s, e, 30, 10, UnixMs(70_000)),
            PublishWindow::Open(UnixMs(210_000))
        );
        assert_eq!(
            publish_window(s, e, 30, 10, UnixMs(209_999)),
            PublishWindow::Open(UnixMs(210_000))
        );
        assert_eq!(
            publish_window(s, e, 30, 10, UnixMs(210_000)),
            PublishWindow::Over
        );
    }
}
