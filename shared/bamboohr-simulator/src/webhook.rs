//! BambooHR's webhook signatures and payloads, as BambooHR sends them: the field-based
//! payload (`{"employees": [...]}`, English display names) and the event-based payload
//! (`{"type", "timestamp", "data": {companyId, employeeId, changedFields}}`), signed with
//! hex HMAC-SHA256 over the raw body followed by the `X-BambooHR-Timestamp` value.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::SimError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-BambooHR-Signature";
/// The timestamp header (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-BambooHR-Timestamp";

/// A webhook request ready to send: the exact body bytes and its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhook {
    /// The raw JSON body (what the signature covers).
    pub body: Vec<u8>,
    /// `content-type`, `X-BambooHR-Signature`, `X-BambooHR-Timestamp`.
    pub headers: Vec<(String, String)>,
}

impl SignedWebhook {
    /// Signs `body` with `key` at `timestamp` (Unix seconds as text).
    pub fn new(body: Vec<u8>, key: &[u8], timestamp: &str) -> Self {
        let signature = sign(key, &body, timestamp);
        Self {
            headers: vec![
                ("content-type".into(), "application/json".into()),
                (SIGNATURE_HEADER.into(), signature),
                (TIMESTAMP_HEADER.into(), timestamp.into()),
            ],
            body,
        }
    }

    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Hex HMAC-SHA256 with `key` over the body bytes followed by the timestamp value.
pub fn sign(key: &[u8], body: &[u8], timestamp: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    mac.update(timestamp.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// BambooHR's delays before retrying a webhook the receiver answered with a 5xx: five
/// retries, 5, 10, 20, 40 and 80 minutes apart. 4xx answers are not retried.
pub const RETRY_DELAYS_MINUTES: [u64; 5] = [5, 10, 20, 40, 80];

/// When retries of a failed webhook happen: BambooHR's delays times `time_scale` (1.0 is
/// BambooHR's real schedule; tests use e.g. 1e-5, turning 5 minutes into 3 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySchedule {
    /// Factor applied to every delay.
    pub time_scale: f64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self { time_scale: 1.0 }
    }
}

impl RetrySchedule {
    /// BambooHR's delays scaled by `time_scale` (negative or non-finite means 0).
    pub fn scaled(time_scale: f64) -> Self {
        Self { time_scale }
    }

    /// The delay before each retry, in order.
    pub fn delays(&self) -> Vec<Duration> {
        let scale = if self.time_scale.is_finite() && self.time_scale > 0.0 {
            self.time_scale
        } else {
            0.0
        };
        RETRY_DELAYS_MINUTES
            .iter()
            .map(|m| Duration::from_secs_f64(*m as f64 * 60.0 * scale))
            .collect()
    }
}

/// What became of one webhook across its attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Each attempt's status, `None` where the receiver could not be reached.
    pub statuses: Vec<Option<u16>>,
    /// Whether an attempt was answered 2xx.
    pub delivered: bool,
}

/// Sends `body` to `url` as BambooHR does: signed with `key`, retried on 5xx (and on an
/// unreachable receiver) on `schedule`, not on other answers. Every attempt is signed
/// afresh at the time it is sent, so a receiver's timestamp tolerance holds for retries.
pub async fn deliver_with_retries(
    url: &str,
    body: &[u8],
    key: &[u8],
    schedule: RetrySchedule,
) -> DeliveryReport {
    let mut statuses = Vec::new();
    let delays = schedule.delays();
    for attempt in 0..=delays.len() {
        if attempt > 0 {
            tokio::time::sleep(delays[attempt - 1]).await;
        }
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let webhook = SignedWebhook::new(body.to_vec(), key, &timestamp);
        let status = match deliver(url, &webhook).await {
            Ok(status) => Some(status),
            Err(e) => {
                tracing::debug!(error = %e, attempt, "webhook receiver unreachable");
                None
            }
        };
        statuses.push(status);
        match status {
            Some(s) if (500..600).contains(&s) => {}
            None => {}
            Some(s) => {
                return DeliveryReport {
                    statuses,
                    delivered: (200..300).contains(&s),
                }
            }
        }
    }
    DeliveryReport {
        statuses,
        delivered: false,
    }
}

/// POSTs a webhook to `url` once and returns the receiver's status. BambooHR's retry
/// schedule (5xx retried at 5, 10, 20, 40, 80 minutes) is the caller's to apply.
pub async fn deliver(url: &str, webhook: &SignedWebhook) -> Result<u16, SimError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| SimError::Delivery {
            reason: e.without_url().to_string(),
        })?;
    let mut request = client.post(url).body(webhook.body.clone());
    for (k, v) in &webhook.headers {
        request = request.header(k, v);
    }
    let response = request.send().await.map_err(|e| SimError::Delivery {
        reason: e.without_url().to_string(),
    })?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_body_then_the_timestamp() {
        // Concatenation, not a separator: body "ab" + ts "c" equals body "a" + ts "bc".
        assert_eq!(sign(b"k", b"ab", "c"), sign(b"k", b"a", "bc"));
        assert_ne!(sign(b"k", b"ab", "c"), sign(b"k2", b"ab", "c"));
        assert_eq!(sign(b"k", b"", "").len(), 64);
    }

    #[test]
    fn the_retry_schedule_is_bamboohrs_and_scales() {
        let real = RetrySchedule::default().delays();
        assert_eq!(real[0], Duration::from_secs(300));
        assert_eq!(real[4], Duration::from_secs(80 * 60));
        let fast = RetrySchedule::scaled(1e-5).delays();
        assert_eq!(fast.len(), 5);
        assert_eq!(fast[0], Duration::from_millis(3));
        assert!(RetrySchedule::scaled(-1.0)
            .delays()
            .iter()
            .all(Duration::is_zero));
    }

    #[test]
    fn a_signed_webhook_carries_both_headers() {
        let w = SignedWebhook::new(b"{}".to_vec(), b"key", "1700000000");
        assert_eq!(w.header("x-bamboohr-timestamp"), Some("1700000000"));
        assert_eq!(
            w.header(SIGNATURE_HEADER),
            Some(sign(b"key", b"{}", "1700000000").as_str())
        );
    }
}
