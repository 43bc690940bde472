//! TV sign-in codes (RFC 8628, OAuth 2.0 device authorization grant): the user code a TV shows and a
//! phone types, and the device code the TV polls with.
//!
//! The user code is 8 letters from RFC 8628 section 6.1's example alphabet: 20 consonants, no vowels
//! (no words spelled by chance) and no letters that read like digits, about 34.6 bits. It is shown as
//! `BCDF-GHJK`; what the phone sends is read case-blind with dashes and spaces left out. A guesser is held
//! to the address's budget of failed lookups, and a code lives minutes and works once. The device code
//! is the user code, a dot, and 32 random bytes (base64url): only the TV knows it, the store keeps a
//! keyed hash of the random part.

use rand::Rng as _;

use crate::ids::random_b64;

/// The letters of user codes.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code.
pub const LEN: usize = 8;

/// A user code in its canonical form (8 letters of [`ALPHABET`], no dash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl UserCode {
    /// A fresh random code.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..LEN)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect(),
        )
    }

    /// A code as typed: case-blind, dashes and white space ignored; `None` unless that leaves 8 letters
    /// of the alphabet.
    pub fn parse(typed: &str) -> Option<Self> {
        if typed.len() > 64 {
            return None;
        }
        let code: String = typed
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(Self(code))
    }

    /// The canonical form (`BCDFGHJK`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As the TV shows it (`BCDF-GHJK`).
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..LEN / 2], &self.0[LEN / 2..])
    }
}

/// A device code: the user code and the TV's secret.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The code's user code.
    pub user_code: UserCode,
    secret: String,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceCode({}.…)", self.user_code.as_str())
    }
}

impl DeviceCode {
    /// A fresh device code for `user_code`.
    pub fn generate(user_code: UserCode) -> Self {
        Self {
            user_code,
            secret: random_b64(32),
        }
    }

    /// A device code as the TV sends it; `None` when it cannot be one.
    pub fn parse(text: &str) -> Option<Self> {
        let (user, secret) = text.split_once('.')?;
        let ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (ok && user.len() == LEN)
            .then(|| UserCode::parse(user))
            .flatten()
            .filter(|u| u.as_str() == user)
            .map(|user_code| Self {
                user_code,
                secret: secret.to_owned(),
            })
    }

    /// The random part (hash it before it is stored).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The text the TV keeps and sends.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.user_code.as_str(), self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_read_as_typed_and_refused_otherwise() {
        let code = UserCode::generate();
        assert_eq!(code.as_str().len(), 8);
        assert_eq!(UserCode::parse(&code.display()), Some(code.clone()));
        assert_eq!(UserCode::parse(" bcdf-ghjk ").unwrap().as_str(), "BCDFGHJK");
        assert_eq!(UserCode::parse("bcdf ghjk").unwrap().display(), "BCDF-GHJK");
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ВCDF-GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
        assert_eq!(UserCode::parse(&"B".repeat(100)), None);
    }

    #[test]
    fn device_codes_round_trip_and_bad_ones_are_refused() {
        let d = DeviceCode::generate(UserCode::generate());
        assert_eq!(DeviceCode::parse(&d.expose()), Some(d.clone()));
        assert!(
            !format!("{d:?}").contains(d.secret()),
            "Debug hides the secret"
        );
        let secret = d.secret().to_owned();
        for bad in [
            String::new(),
            secret.clone(),
            format!("bcdfghjk.{secret}"),
            format!("BCDF-GHJK.{secret}"),
            format!("BCDFGHJK.{}", &secret[1..]),
            format!("BCDFGHJK.{}!", &secret[1..]),
        ] {
            assert_eq!(DeviceCode::parse(&bad), None, "{bad}");
        }
    }
}
