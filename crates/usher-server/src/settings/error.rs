//! Why a configuration is refused.

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or has unknown keys or wrong types.
    #[error(transparent)]
    Read(Box<figment::Error>),
    /// A value is not acceptable.
    #[error("config key `{key}`: {message}")]
    Invalid {
        /// The key, dotted.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A value refused, with the key that holds it.
pub(super) fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}
