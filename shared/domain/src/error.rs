//! The one error type of the domain crate: a value that failed to parse.

/// A value from outside could not become a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The named kind of value was rejected; `reason` says why (never the value itself,
    /// which may be HR data).
    #[error("invalid {kind}: {reason}")]
    Invalid {
        /// What was being parsed, e.g. "directory id".
        kind: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}

impl DomainError {
    pub(crate) fn invalid(kind: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            kind,
            reason: reason.into(),
        }
    }

    /// Parse failures are about the input, so retrying never helps.
    pub fn is_retryable(&self) -> bool {
        false
    }
}
