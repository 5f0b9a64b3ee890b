//! The one error type of the mapping crate.
//!
//! Every message says which field failed and why, never the value: values are HR data
//! (names, emails) and error messages end up in logs and run reports.

/// Why a BambooHR record could not be mapped, or a user could not be rendered for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// A field's value could not be parsed; `field` is the canonical key (e.g. `hireDate`)
    /// and `reason` says what was expected.
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// The canonical key of the field (see [`crate::Field::key`]), or `employeeId`.
        field: &'static str,
        /// What was wrong with it, in words that never quote the value.
        reason: &'static str,
    },
    /// The employee has no work email, which SCIM and upsert targets require as their
    /// match key: a per-record skip reason, not a failure of the run.
    #[error("the employee has no work email, which this target requires")]
    MissingWorkEmail,
    /// A field the target needs (other than the work email) has no value.
    #[error("the employee has no {field}, which this target requires")]
    MissingField {
        /// The canonical key of the missing field.
        field: &'static str,
    },
}

impl MappingError {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        Self::InvalidValue { field, reason }
    }

    /// Mapping is pure: the same input fails the same way, so retrying never helps.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_errors_are_never_retryable() {
        assert!(!MappingError::MissingWorkEmail.is_retryable());
        assert!(!MappingError::invalid("hireDate", "is not a YYYY-MM-DD date").is_retryable());
    }

    #[test]
    fn messages_name_the_field_and_the_reason() {
        let e = MappingError::invalid("hireDate", "is not a YYYY-MM-DD date");
        assert_eq!(e.to_string(), "invalid hireDate: is not a YYYY-MM-DD date");
    }
}
