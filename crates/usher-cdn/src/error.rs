//! Why a request could not be signed. Signing never panics on bad input: every refusal is one of these.

/// Why signing was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The key material is not of the scheme's form (not hex, not base64url, empty…).
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// The PEM private key could not be read (CloudFront).
    #[error("bad PEM private key: {0}")]
    BadPem(String),
    /// The path is not an absolute path of printable ASCII (or holds a character the scheme cannot carry).
    #[error("bad path: {0}")]
    BadPath(&'static str),
    /// The URL is not an absolute `http(s)://host/…` URL the scheme can sign.
    #[error("bad URL: {0}")]
    BadUrl(&'static str),
    /// The scheme signs whole URLs (with host) and was given only a path.
    #[error("this scheme signs absolute URLs: give a URL, not a path")]
    UrlRequired,
    /// A parameter or request field holds a value the scheme's format cannot carry.
    #[error("bad {field}: {reason}")]
    BadField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The times are impossible (an expiry not after the start, or before 1970).
    #[error("bad times: {0}")]
    BadTimes(&'static str),
    /// The request asks for a binding the scheme cannot express (see [`crate::Capabilities`]).
    #[error("{scheme} cannot bind {what}")]
    Unsupported {
        /// The scheme.
        scheme: &'static str,
        /// The binding it cannot carry.
        what: &'static str,
    },
    /// The scheme needs a field the request lacks (for example Usher's grant needs a session).
    #[error("{scheme} needs {what}")]
    Missing {
        /// The scheme.
        scheme: &'static str,
        /// The missing field.
        what: &'static str,
    },
    /// The nginx `secure_link_md5` expression would hash a string nginx can never compute the same way
    /// (the message shows it, with the secret as `$secret`).
    #[error("nginx could never match this link: {0}")]
    Unmatchable(String),
    /// The nginx `secure_link_md5` expression could not be understood.
    #[error("bad secure_link_md5 expression: {0}")]
    BadExpression(String),
    /// The RSA signature could not be made (a key that parsed but cannot sign).
    #[error("RSA signing failed")]
    Rsa,
}
