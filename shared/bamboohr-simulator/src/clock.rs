//! The simulator's notion of now: whole seconds, as BambooHR stamps changes.

use time::{Date, OffsetDateTime};

/// Now, in whole seconds: BambooHR's timestamps have no fractions, and a client's
/// `since` (rounded down) must still cover a change made within the same second.
pub(crate) fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

pub(crate) fn today() -> Date {
    OffsetDateTime::now_utc().date()
}
