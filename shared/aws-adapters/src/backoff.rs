//! Jittered exponential backoff for the retries the SDK cannot do itself: per-entry
//! failures inside a successful response (PutEvents entries, unprocessed batch keys).

use std::time::Duration;

use rand::Rng;

/// "Full jitter": a uniformly random delay between zero and `base * 2^attempt` (capped),
/// so callers that failed together do not retry together.
pub(crate) fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(cap);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

/// Sleeps for [`delay`].
pub(crate) async fn sleep(attempt: u32, base: Duration, cap: Duration) {
    tokio::time::sleep(delay(attempt, base, cap)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_growing_ceiling_and_the_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempt in 0..40 {
            let ceiling = (base * 2u32.saturating_pow(attempt.min(20))).min(cap);
            assert!(delay(attempt, base, cap) <= ceiling);
        }
    }
}
