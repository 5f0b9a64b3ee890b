//! The one error type of the BambooHR client.
//!
//! Every variant says what failed in words that are safe to log: HTTP statuses, error
//! codes BambooHR sends, counts and durations, never a credential and never a value from
//! an employee record (response bodies are not quoted).

use std::time::Duration;

/// Why a call to BambooHR failed.
#[derive(Debug, thiserror::Error)]
pub enum BambooError {
    /// The client could not be built (bad base URL, TLS setup failed).
    #[error("invalid client configuration: {reason}")]
    InvalidConfig {
        /// What is wrong with the configuration.
        reason: String,
    },
    /// BambooHR refused the credentials (401): the API key or token is wrong, revoked or
    /// expired.
    #[error("BambooHR refused the credentials (401)")]
    Unauthorized,
    /// The credentials are valid but lack permission for the operation (403).
    #[error("BambooHR denied access to {operation} (403)")]
    Forbidden {
        /// The operation that was denied (e.g. `dataset employee`).
        operation: String,
    },
    /// The resource does not exist (404), e.g. an employee id that was deleted.
    #[error("not found: {resource} (404)")]
    NotFound {
        /// What was looked up (e.g. `employee 123`).
        resource: String,
    },
    /// BambooHR throttled the caller (429), and retrying within this call's attempts and
    /// budget did not get through. `retry_after` is what the last answer asked for.
    #[error("rate limited by BambooHR{}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// How long BambooHR asked the caller to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// BambooHR or the network did not answer usefully: a 5xx status, a timeout, a refused
    /// or dropped connection. `retry_after` is set when a 503 carried Retry-After.
    #[error("BambooHR unavailable: {reason}{}", fmt_retry_after(.retry_after))]
    Unavailable {
        /// What happened (status or transport failure), without body content.
        reason: String,
        /// How long BambooHR asked the caller to wait, when a 503 said.
        retry_after: Option<Duration>,
    },
    /// BambooHR answered 2xx with a body that is not the JSON this operation expects.
    #[error("unexpected response from BambooHR: {reason}")]
    BadResponse {
        /// What was wrong with the shape (never the body itself).
        reason: String,
    },
    /// The request was rejected as invalid (400, 413, 422, other 4xx), or the client refused
    /// to send it because an argument could never be valid.
    #[error("invalid request{}: {reason}", fmt_status(.status))]
    InvalidRequest {
        /// The HTTP status, when BambooHR answered; `None` when rejected before sending.
        status: Option<u16>,
        /// BambooHR's error code (`BadPage`, `BadRequest`, a problem `code`/`title`), or
        /// the client's reason.
        reason: String,
    },
    /// Refreshed OAuth tokens could not be written back to the secret store. The client
    /// keeps them and stores them before its next request.
    #[error("refreshed OAuth tokens could not be stored: {reason}")]
    TokenStore {
        /// What the store said (never a token).
        reason: String,
    },
    /// The call's total time budget ran out before an attempt succeeded.
    #[error("gave up after {attempts} attempt(s) within the {budget:?} budget: {last}")]
    BudgetExceeded {
        /// Attempts made.
        attempts: u32,
        /// The budget that ran out.
        budget: Duration,
        /// The last failure seen.
        #[source]
        last: Box<BambooError>,
    },
}

fn fmt_retry_after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs_f64()),
        None => String::new(),
    }
}

fn fmt_status(status: &Option<u16>) -> String {
    match status {
        Some(s) => format!(" ({s})"),
        None => String::new(),
    }
}

impl BambooError {
    /// Whether a later attempt of the same call may succeed: throttling, unavailability and
    /// an exhausted budget are transient; credentials, permissions, missing resources,
    /// invalid requests and malformed answers fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            BambooError::RateLimited { .. }
            | BambooError::Unavailable { .. }
            | BambooError::BudgetExceeded { .. }
            | BambooError::TokenStore { .. } => true,
            BambooError::InvalidConfig { .. }
            | BambooError::Unauthorized
            | BambooError::Forbidden { .. }
            | BambooError::NotFound { .. }
            | BambooError::BadResponse { .. }
            | BambooError::InvalidRequest { .. } => false,
        }
    }

    /// How long BambooHR asked callers to wait before trying again, when it said (429, or
    /// 503 with Retry-After), looking through [`BambooError::BudgetExceeded`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            BambooError::RateLimited { retry_after }
            | BambooError::Unavailable { retry_after, .. } => *retry_after,
            BambooError::BudgetExceeded { last, .. } => last.retry_after(),
            _ => None,
        }
    }

    /// A short, stable name of the variant for structured logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            BambooError::InvalidConfig { .. } => "invalid_config",
            BambooError::Unauthorized => "unauthorized",
            BambooError::Forbidden { .. } => "forbidden",
            BambooError::NotFound { .. } => "not_found",
            BambooError::RateLimited { .. } => "rate_limited",
            BambooError::Unavailable { .. } => "unavailable",
            BambooError::BadResponse { .. } => "bad_response",
            BambooError::InvalidRequest { .. } => "invalid_request",
            BambooError::BudgetExceeded { .. } => "budget_exceeded",
            BambooError::TokenStore { .. } => "token_store",
        }
    }

    pub(crate) fn bad_response(reason: impl Into<String>) -> Self {
        BambooError::BadResponse {
            reason: reason.into(),
        }
    }

    pub(crate) fn rejected(reason: impl Into<String>) -> Self {
        BambooError::InvalidRequest {
            status: None,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_unavailability_and_budget_are_retryable() {
        assert!(BambooError::RateLimited { retry_after: None }.is_retryable());
        assert!(BambooError::Unavailable {
            reason: "503".into(),
            retry_after: None
        }
        .is_retryable());
        assert!(!BambooError::Unauthorized.is_retryable());
        assert!(!BambooError::Forbidden {
            operation: "x".into()
        }
        .is_retryable());
        assert!(!BambooError::NotFound {
            resource: "employee 1".into()
        }
        .is_retryable());
        assert!(!BambooError::bad_response("not json").is_retryable());
        assert!(!BambooError::rejected("bad").is_retryable());
    }

    #[test]
    fn retry_after_is_found_through_an_exceeded_budget() {
        let e = BambooError::BudgetExceeded {
            attempts: 3,
            budget: Duration::from_secs(10),
            last: Box::new(BambooError::RateLimited {
                retry_after: Some(Duration::from_secs(30)),
            }),
        };
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn messages_show_the_status_and_the_wait() {
        let e = BambooError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(e.to_string(), "rate limited by BambooHR (retry after 30s)");
        let e = BambooError::InvalidRequest {
            status: Some(400),
            reason: "BadPage".into(),
        };
        assert_eq!(e.to_string(), "invalid request (400): BadPage");
    }
}
