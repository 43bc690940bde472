//! What every validated value of the domain shares: the [`ValidationError`] that names the offending
//! field, and the free-text rule ([`check_text`]) of titles, names and references.
//!
//! It sits below `show`, `geo` and `ticket` and imports none of them, so their imports run one way
//! (`show` → `geo` → `validation`; before, `geo` took the error from `show` while `show` took the Geo
//! policy from `geo`).

/// Why a description (a show, a ticket, a Geo policy, a media path) is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The offending field, as named in the API.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Checks a free-text field: length and no control characters other than newlines and tabs.
///
/// # Errors
/// A [`ValidationError`] about `field` when the text is shorter than `min` or longer than `max`
/// characters, or holds another control character.
pub fn check_text(
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<(), ValidationError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(ValidationError::new(
            field,
            format!("must be {min} to {max} characters long"),
        ));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_bounded_and_free_of_control_characters() {
        assert!(check_text("title", "Hello", 1, 200).is_ok());
        assert!(check_text("description", "two\nlines\tand a tab", 0, 50).is_ok());
        assert_eq!(check_text("title", "", 1, 200).unwrap_err().field, "title");
        assert!(check_text("title", "ab", 1, 1).is_err());
        assert!(check_text("title", "bell\u{7}", 1, 200).is_err());
        // characters, not bytes
        assert!(check_text("title", "ééé", 3, 3).is_ok());
    }
}
