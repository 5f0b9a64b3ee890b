//! When to retry, for every crate of the workspace: the jittered exponential backoff
//! ([`backoff_ceiling`], [`full_jitter`], [`jittered`]) and the one Retry-After reader
//! ([`parse_retry_after`]).
//!
//! Retry *policies* (how many attempts, which answers are worth another one, budgets)
//! stay with their callers: they differ per service. Only the arithmetic lives here, so
//! it is written, and tested, once. Nothing here sleeps; callers wait with their own
//! runtime's timer.

#![warn(missing_docs)]

use std::time::{Duration, SystemTime};

use rand::Rng as _;
use time::OffsetDateTime;

/// The backoff ceiling before retry number `retry` (1 for the first retry):
/// `base * 2^(retry-1)`, capped at `max`. Retry 0 counts as the first.
pub fn backoff_ceiling(retry: u32, base: Duration, max: Duration) -> Duration {
    // Past 2^31 every sane base is far beyond any cap; clamping keeps the shift defined.
    let exponent = retry.saturating_sub(1).min(31);
    base.checked_mul(1u32 << exponent).unwrap_or(max).min(max)
}

/// A uniformly random wait in `[0, ceiling]`, in whole milliseconds ("full jitter"),
/// so clients that failed together do not retry together.
pub fn full_jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    if ceiling_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
}

/// The wait before retry number `retry` (1 for the first retry): [`full_jitter`] of
/// [`backoff_ceiling`]`(retry, base, max)`.
pub fn jittered(retry: u32, base: Duration, max: Duration) -> Duration {
    full_jitter(backoff_ceiling(retry, base, max))
}

/// Reads a Retry-After header value relative to `now`: delta-seconds (`120`) or an
/// HTTP-date in any of the three forms RFC 9110 section 5.6.7 asks recipients to accept
/// (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37
/// GMT`, asctime `Sun Nov  6 08:49:37 1994`). A date in the past means "now" (zero).
/// Anything else is `None`: the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values rather than failing: they exceed any budget anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::from(now))
            // Round up: sending even a fraction of a second early breaks the promise.
            .map_or(Duration::ZERO, |wait| {
                Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-09-20 12:00:00 UTC);

    #[test]
    fn retry_after_in_seconds_is_read_as_a_duration() {
        assert_eq!(
            parse_retry_after("120", NOW),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", NOW), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_as_an_http_date_is_the_time_until_that_date() {
        assert_eq!(
            parse_retry_after("Sun, 20 Sep 2026 12:00:45 GMT", NOW),
            Some(Duration::from_secs(45))
        );
    }

    #[test]
    fn retry_after_in_the_obsolete_rfc_850_and_asctime_forms_is_accepted() {
        assert_eq!(
            parse_retry_after("Sunday, 20-Sep-26 12:00:45 GMT", NOW),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            parse_retry_after("Sun Sep 20 12:00:45 2026", NOW),
            Some(Duration::from_secs(45))
        );
        // asctime pads a one-digit day with a space.
        assert_eq!(
            parse_retry_after("Thu Oct  1 12:00:00 2026", NOW),
            Some(Duration::from_secs(11 * 24 * 3600))
        );
    }

    #[test]
    fn a_retry_after_date_in_the_past_means_now() {
        assert_eq!(
            parse_retry_after("Sun, 20 Sep 2026 11:00:00 GMT", NOW),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_retry_after_date_is_rounded_up_to_the_next_second() {
        let now = datetime!(2026-09-20 12:00:00.250 UTC);
        assert_eq!(
            parse_retry_after("Sun, 20 Sep 2026 12:00:10 GMT", now),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn an_unreadable_retry_after_is_ignored() {
        // Negative delta-seconds are not a form of Retry-After at all.
        assert_eq!(parse_retry_after("soon", NOW), None);
        assert_eq!(parse_retry_after("-5", NOW), None);
        assert_eq!(parse_retry_after("-3", NOW), None);
        assert_eq!(parse_retry_after("", NOW), None);
    }

    #[test]
    fn the_backoff_ceiling_doubles_per_retry_up_to_the_maximum() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff_ceiling(1, base, max), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(2, base, max), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(4, base, max), Duration::from_millis(800));
        assert_eq!(backoff_ceiling(5, base, max), max);
        assert_eq!(backoff_ceiling(200, base, max), max);
    }

    #[test]
    fn full_jitter_never_exceeds_the_ceiling() {
        let ceiling = Duration::from_millis(50);
        for _ in 0..200 {
            assert!(full_jitter(ceiling) <= ceiling);
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }

    /// From aws-adapters' copy, which counted attempts from 0: attempt `n` is retry
    /// `n + 1` here.
    #[test]
    fn delays_stay_under_the_growing_ceiling_and_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 0..40 {
            let ceiling = (base * 2u32.saturating_pow(attempt.min(20))).min(cap);
            assert!(jittered(attempt + 1, base, cap) <= ceiling);
        }
    }
}
