//! [`MediaPath`]: a path under the media root (and under each CDN's base URL), with the one rule that
//! every place naming media checks: a show's stream folder, the origin's `/o/` and `/pull/` requests, a
//! CDN's canary, the objects the signers sign.
//!
//! The rule: relative, `/`-separated, 1 to [`MediaPath::MAX_LEN`] bytes, every segment non-empty, made of
//! `A-Z a-z 0-9 . _ -` and not starting with `.`. So a media path can never climb out of its root
//! (`..`), be absolute (a leading `/` is an empty segment), name a hidden file (`.htaccess`, `.git`) or a
//! folder twice (`a/./b`, `a//b`), and never holds backslashes, `%`, spaces, control characters or
//! non-ASCII text that a file system, a CDN or a URL normaliser could read differently from us.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A validated relative media path (`demo`, `demo/360p/seg_001.ts`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaPath(String);

/// Why a text is not a [`MediaPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaPathError {
    /// The text is empty.
    #[error("a media path must not be empty")]
    Empty,
    /// The text is longer than the limit (bytes).
    #[error("a media path must be at most {0} bytes long")]
    TooLong(usize),
    /// Two `/` in a row, or one at the start (an absolute path) or the end.
    #[error(
        "a media path must be relative, without empty segments ('//', a leading or trailing '/')"
    )]
    EmptySegment,
    /// A segment starting with `.`: `.`, `..` or a hidden file.
    #[error("a media path segment must not start with '.' ('.', '..' or a hidden file)")]
    DotSegment,
    /// A byte outside `A-Z a-z 0-9 . _ -` (and `/` between segments).
    #[error("a media path is made of A-Z, a-z, 0-9, '.', '_' and '-' between '/'")]
    BadCharacter,
}

impl MediaPath {
    /// The longest media path, in bytes (an object deep under a stream folder).
    pub const MAX_LEN: usize = 1024;

    /// Checks `s` against the rule of this module.
    ///
    /// # Errors
    /// The first [`MediaPathError`] found.
    pub fn parse(s: &str) -> Result<Self, MediaPathError> {
        Self::check(s, Self::MAX_LEN)?;
        Ok(Self(s.to_owned()))
    }

    /// Checks `s` against the rule of this module with a lower length limit `max` (at most
    /// [`MediaPath::MAX_LEN`]), for fields that name a folder with objects under it.
    ///
    /// # Errors
    /// The first [`MediaPathError`] found.
    pub fn parse_within(s: &str, max: usize) -> Result<Self, MediaPathError> {
        Self::check(s, max.min(Self::MAX_LEN))?;
        Ok(Self(s.to_owned()))
    }

    fn check(s: &str, max: usize) -> Result<(), MediaPathError> {
        if s.is_empty() {
            return Err(MediaPathError::Empty);
        }
        if s.len() > max {
            return Err(MediaPathError::TooLong(max));
        }
        for seg in s.split('/') {
            if seg.is_empty() {
                return Err(MediaPathError::EmptySegment);
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(MediaPathError::BadCharacter);
            }
            if seg.starts_with('.') {
                return Err(MediaPathError::DotSegment);
            }
        }
        Ok(())
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MediaPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MediaPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for MediaPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for MediaPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_folders_and_objects_under_them_pass() {
        for ok in [
            "demo",
            "demo/master.m3u8",
            "demo/360p/seg_001.ts",
            "a-b_c.d/e.f.g",
            "shows/2026/final..cut/x",
        ] {
            assert_eq!(MediaPath::parse(ok).unwrap().as_str(), ok);
        }
        assert!(MediaPath::parse(&"a".repeat(MediaPath::MAX_LEN)).is_ok());
    }

    #[test]
    fn every_escape_is_refused() {
        use MediaPathError::*;
        for (bad, why) in [
            ("", Empty),
            ("/demo", EmptySegment),
            ("/etc/passwd", EmptySegment),
            ("demo/", EmptySegment),
            ("demo//x", EmptySegment),
            ("..", DotSegment),
            (".", DotSegment),
            ("../etc", DotSegment),
            ("demo/../x", DotSegment),
            ("demo/./x", DotSegment),
            (".hidden/x", DotSegment),
            ("demo/.hidden", DotSegment),
            ("demo\\..\\..\\etc", BadCharacter),
            ("demo/%2e%2e", BadCharacter),
            ("demo/a b", BadCharacter),
            ("demo/\0", BadCharacter),
            ("demo/\n", BadCharacter),
            ("d\u{e9}mo", BadCharacter),
        ] {
            assert_eq!(MediaPath::parse(bad), Err(why), "{bad:?}");
        }
        assert_eq!(
            MediaPath::parse(&"a".repeat(MediaPath::MAX_LEN + 1)),
            Err(TooLong(MediaPath::MAX_LEN))
        );
        assert_eq!(
            MediaPath::parse_within(&"a".repeat(257), 256),
            Err(TooLong(256))
        );
        assert!(MediaPath::parse_within(&"a".repeat(256), 256).is_ok());
    }

    #[test]
    fn it_reads_back_only_when_valid() {
        let p: MediaPath = serde_json::from_str("\"demo/x.ts\"").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"demo/x.ts\"");
        assert!(serde_json::from_str::<MediaPath>("\"../x\"").is_err());
    }
}
