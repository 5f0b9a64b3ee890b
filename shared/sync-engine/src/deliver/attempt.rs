//! What one delivery attempt came to: the outcome per target that the delivery log and
//! the operator see, and what the retry path needs beyond it (status, Retry-After),
//! with the judgement of an HTTP answer that every HTTP target kind shares.

use std::time::Duration;

use domain::TargetId;
use reqwest::header::RETRY_AFTER;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::OffsetDateTime;

use crate::deliver::retry;
use crate::deps::Engine;

/// What happened at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TargetOutcome {
    /// The target accepted the delivery.
    Delivered {
        /// HTTP status.
        status: u16,
        /// The object version delivered.
        version: u64,
    },
    /// Nothing was sent, on purpose.
    Skipped {
        /// Why, e.g. "already delivered version 3".
        reason: String,
    },
    /// The delivery failed.
    Failed {
        /// Why (status code or transport error; never the body).
        reason: String,
        /// Whether a later attempt may succeed.
        retryable: bool,
    },
    /// The delivery failed (or the target's breaker is open) and was handed to the
    /// retry path; the change-queue message no longer waits for it.
    Scheduled {
        /// Why the last attempt did not succeed.
        reason: String,
        /// Retries made so far (0: the first retry is next).
        retries: u32,
        /// When the next attempt is due.
        #[serde(with = "time::serde::rfc3339")]
        next_attempt_at: OffsetDateTime,
    },
}

/// Per-target results for one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// One entry per target of the directory.
    pub targets: Vec<(TargetId, TargetOutcome)>,
}

impl DispatchReport {
    /// True when some target failed in a way a retry may fix and was not handed to
    /// the retry path, so the change-queue message itself must be retried.
    pub fn needs_retry(&self) -> bool {
        self.targets.iter().any(|(_, o)| {
            matches!(
                o,
                TargetOutcome::Failed {
                    retryable: true,
                    ..
                }
            )
        })
    }
}

/// One attempt's result with what the retry path needs beyond the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) outcome: TargetOutcome,
    /// The HTTP status of the decisive answer, if there was one.
    pub(crate) status: Option<u16>,
    /// How long the target asked us to wait (429/503 Retry-After).
    pub(crate) retry_after: Option<Duration>,
}

impl Attempt {
    pub(crate) fn plain(outcome: TargetOutcome) -> Self {
        let status = match &outcome {
            TargetOutcome::Delivered { status, .. } => Some(*status),
            _ => None,
        };
        Self {
            outcome,
            status,
            retry_after: None,
        }
    }

    pub(crate) fn failed(reason: impl Into<String>, retryable: bool) -> Self {
        Self::plain(TargetOutcome::Failed {
            reason: reason.into(),
            retryable,
        })
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// Judges an HTTP answer of an app webhook or upsert target.
pub(crate) fn judge(
    engine: &Engine,
    resp: &reqwest::Response,
    version: u64,
    what: &str,
) -> Attempt {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Attempt::plain(TargetOutcome::Delivered { status, version });
    }
    if let Some(refused) = outbound_http::refuse_redirect(resp.status()) {
        // Following it would re-send the body (HR data) and a query-string API key to
        // wherever the target points; an operator fixes the URL instead.
        return Attempt {
            outcome: TargetOutcome::Failed {
                reason: format!("{what}: {refused}"),
                retryable: false,
            },
            status: Some(status),
            retry_after: None,
        };
    }
    let retryable = retry::is_retryable_status(status);
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_timing::parse_retry_after(v, engine.clock.now()))
        .filter(|_| retryable);
    let mut reason = format!("{what}: HTTP {status}");
    if let Some(after) = retry_after {
        reason.push_str(&format!(", retry after {}s", after.as_secs()));
    }
    Attempt {
        outcome: TargetOutcome::Failed { reason, retryable },
        status: Some(status),
        retry_after,
    }
}

/// Names a transport failure without its (possibly URL-bearing) details. A name that
/// resolved only to private addresses (refused by the policy) is permanent.
pub(crate) fn transport_failure(e: &reqwest::Error, what: &str) -> Attempt {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<outbound_http::Refused>() {
            return Attempt::failed(format!("{what}: {refused}"), false);
        }
        source = s.source();
    }
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    Attempt::failed(format!("{what}: {why}"), true)
}

/// Appends the secret URL parameters (e.g. an API key) to a target URL. The result is
/// never logged.
pub(crate) fn with_secret_params(
    url: &str,
    params: Option<&std::collections::BTreeMap<String, SecretString>>,
) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(url).map_err(|_| "the target URL is not valid".to_string())?;
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in params {
            pairs.append_pair(name, value.expose_secret());
        }
    }
    Ok(url)
}
