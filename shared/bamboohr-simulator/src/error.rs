//! The one error type of the simulator: what a control call or a webhook delivery could
//! not do. Messages name ids and fields, never employee values.

/// Why a simulator operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No employee has this id (or it was deleted, for operations on live employees).
    #[error("no employee with id {id}")]
    UnknownEmployee {
        /// The id asked for.
        id: String,
    },
    /// A field could not take the value given.
    #[error("invalid value for {field}: {reason}")]
    InvalidValue {
        /// The field's canonical key.
        field: String,
        /// What was wrong, without the value.
        reason: String,
    },
    /// A company file could not be read or parsed.
    #[error("company file: {reason}")]
    CompanyFile {
        /// What went wrong.
        reason: String,
    },
    /// A webhook could not be delivered (connection refused, timeout).
    #[error("webhook delivery failed: {reason}")]
    Delivery {
        /// What went wrong.
        reason: String,
    },
}

impl SimError {
    /// Only delivery failures are transient; the rest fail the same way again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SimError::Delivery { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delivery_failures_are_retryable() {
        assert!(SimError::Delivery {
            reason: "refused".into()
        }
        .is_retryable());
        assert!(!SimError::UnknownEmployee { id: "1".into() }.is_retryable());
    }
}
