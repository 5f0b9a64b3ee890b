//! Why a store call failed, shared by the store and its sub-stores (sync, delivery,
//! audit) so none of them imports another for it.

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the stored version was not the expected one. Never
    /// retried blindly; the caller re-reads and decides.
    #[error("conflict writing {what}: the stored version changed (expected {expected:?})")]
    Conflict {
        /// What was being written, e.g. "user acme/42".
        what: String,
        /// The version the writer expected (None: expected no item).
        expected: Option<u64>,
    },
    /// The store could not be reached or throttled us past our retries.
    #[error("store unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
    },
    /// A stored item could not be decoded.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which item.
        what: String,
        /// Why.
        reason: String,
    },
}

impl StoreError {
    /// Unavailability may pass; conflicts and corruption need a decision, not a retry.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}
