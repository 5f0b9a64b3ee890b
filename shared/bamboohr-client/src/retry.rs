//! The retry policy: which answers are worth another attempt, how long to wait (full
//! jitter exponential backoff, or exactly what Retry-After says), and reading Retry-After
//! in both of its forms (delta-seconds and HTTP-date).

use std::time::Duration;

use rand::Rng as _;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The backoff ceiling before retry number `retry` (1 for the first retry):
/// `base * 2^(retry-1)`, capped at `max`.
pub(crate) fn backoff_ceiling(retry: u32, base: Duration, max: Duration) -> Duration {
    let exponent = retry.saturating_sub(1).min(31);
    base.checked_mul(1u32 << exponent).unwrap_or(max).min(max)
}

/// A uniformly random wait in `[0, ceiling]` ("full jitter"), so clients that failed
/// together do not retry together.
pub(crate) fn full_jitter(ceiling: Duration) -> Duration {
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    if ceiling_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::rng().random_range(0..=ceiling_ms))
}

/// Reads a Retry-After header value: delta-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`), relative to `now`. A date in the past means "now"
/// (zero). Anything else is `None`: the caller falls back to its own backoff.
pub(crate) fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values rather than failing: they exceed any budget anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    let wait = at - now;
    Some(if wait.is_positive() {
        // Round up: sending even a fraction of a second early breaks the promise.
        let whole = wait.whole_seconds().unsigned_abs();
        let frac = wait.subsec_nanoseconds() > 0;
        Duration::from_secs(whole + u64::from(frac))
    } else {
        Duration::ZERO
    })
}

/// An HTTP-date in the preferred IMF-fixdate form (RFC 9110 section 5.6.7).
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let fixdate = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value, &fixdate)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
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
        assert_eq!(parse_retry_after("soon", NOW), None);
        assert_eq!(parse_retry_after("-5", NOW), None);
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
}
