//! The retry policy of deliveries: which failures are retried, when (a Standard
//! Webhooks-like schedule of growing, jittered delays that never comes earlier than a
//! target's Retry-After), when a delivery is given up to the dead-letter queue, and
//! when a target's circuit breaker opens.

use std::time::Duration;

use ports::BreakerState;
use rand::Rng;
use time::OffsetDateTime;

/// Delays before each retry, after the first attempt from the change queue failed:
/// Standard Webhooks' schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) stretched to
/// ten retries and more than 72 hours (75 h 35 min without jitter), so a target that is
/// down over a long weekend still gets every change.
pub const SCHEDULE: [Duration; 10] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
];

/// Retries after the first attempt; the one after the last is the dead-letter queue.
pub const MAX_RETRIES: u32 = SCHEDULE.len() as u32;

/// Retry-After values beyond this are capped: a target asking for more than a day is
/// treated as down, and the schedule continues from there.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Retryable failures in a row that open a target's circuit breaker.
pub const BREAKER_THRESHOLD: u32 = 5;

/// How long a breaker first stays open; each failed probe doubles it, up to
/// [`BREAKER_MAX_OPEN`].
pub const BREAKER_OPEN: Duration = Duration::from_secs(60);

/// The longest a breaker stays open before the next probe.
pub const BREAKER_MAX_OPEN: Duration = Duration::from_secs(15 * 60);

/// The delay before retry number `retry` (0-based), jittered up by at most a fifth so
/// that many deliveries failing together do not come back together, and never shorter
/// than the target's Retry-After. None when the retries are exhausted.
pub fn delay_before(retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
    let base = *SCHEDULE.get(retry as usize)?;
    let jitter = rand::rng().random_range(0.0..=0.2);
    let jittered = base.mul_f64(1.0 + jitter);
    Some(match retry_after {
        Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

/// Whether an HTTP status is worth retrying: timeouts, throttling and server errors
/// (429, 502, 503, 504, 408, and any other 5xx), never another 4xx.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The breaker after a retryable failure at `now`: it opens at the threshold, and each
/// further failure (a failed probe) keeps it open twice as long, up to the maximum.
pub fn breaker_after_failure(state: BreakerState, now: OffsetDateTime) -> BreakerState {
    let failures = state.consecutive_failures.saturating_add(1);
    let open_until = if failures >= BREAKER_THRESHOLD {
        let doublings = (failures - BREAKER_THRESHOLD).min(8);
        let open = BREAKER_OPEN
            .saturating_mul(1 << doublings)
            .min(BREAKER_MAX_OPEN);
        Some(now + open)
    } else {
        None
    };
    BreakerState {
        consecutive_failures: failures,
        open_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: OffsetDateTime = time::macros::datetime!(2026-09-20 12:00:00 UTC);

    #[test]
    fn the_schedule_makes_at_least_ten_retries_over_at_least_72_hours() {
        const { assert!(MAX_RETRIES >= 10) };
        let total: Duration = SCHEDULE.iter().sum();
        assert!(total >= Duration::from_secs(72 * 3600), "{total:?}");
        assert!(SCHEDULE.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn jitter_only_lengthens_a_delay_and_by_at_most_a_fifth() {
        for retry in 0..MAX_RETRIES {
            let base = SCHEDULE[retry as usize];
            let d = delay_before(retry, None).unwrap();
            assert!(d >= base && d <= base.mul_f64(1.2), "{retry}: {d:?}");
        }
        assert_eq!(delay_before(MAX_RETRIES, None), None);
    }

    #[test]
    fn a_retry_after_longer_than_the_schedule_wins() {
        let d = delay_before(0, Some(Duration::from_secs(120))).unwrap();
        assert_eq!(d, Duration::from_secs(120));
        let d = delay_before(0, Some(Duration::from_secs(1))).unwrap();
        assert!(d >= Duration::from_secs(5));
        let d = delay_before(0, Some(Duration::from_secs(30 * 24 * 3600))).unwrap();
        assert_eq!(d, MAX_RETRY_AFTER);
    }

    #[test]
    fn only_throttling_timeouts_and_server_errors_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 410, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn the_breaker_opens_at_the_threshold_and_backs_off_on_failed_probes() {
        let mut b = BreakerState::default();
        for _ in 1..BREAKER_THRESHOLD {
            b = breaker_after_failure(b, NOW);
            assert!(!b.is_open(NOW));
        }
        b = breaker_after_failure(b, NOW);
        assert_eq!(b.open_until, Some(NOW + BREAKER_OPEN));
        b = breaker_after_failure(b, NOW);
        assert_eq!(b.open_until, Some(NOW + BREAKER_OPEN * 2));
        for _ in 0..20 {
            b = breaker_after_failure(b, NOW);
        }
        assert_eq!(b.open_until, Some(NOW + BREAKER_MAX_OPEN));
    }
}
