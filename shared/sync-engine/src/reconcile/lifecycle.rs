//! Date-driven lifecycle: "today" in the directory's time zone, and the daily sweep that
//! applies transitions that happen by date alone (a pre-start window opening, a
//! termination date arriving) even when BambooHR reports nothing.

use domain::{Directory, EmployeeId, UserState};
use ports::StoreError;
use time::{Date, OffsetDateTime};
use tracing::{debug, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::reconcile::apply::{write_if_changed, ApplyOutcome};
use crate::reconcile::groups::GroupBook;

/// The calendar day at `now` in the directory's time zone. An unknown zone name
/// falls back to UTC (and says so), so a typo never stops a sync.
pub fn local_today(directory: &Directory, now: OffsetDateTime) -> Date {
    directory.today(now).unwrap_or_else(|_| {
        warn!(directory_id = %directory.id, "unknown time zone; using UTC");
        now.date()
    })
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Users whose state changed.
    pub changed: u64,
    /// Of those, users that became inactive.
    pub deactivated: u64,
    /// Fingerprint entries read.
    pub projection_reads: u64,
    /// User items read.
    pub user_reads: u64,
}

/// Applies every date-driven transition due on `today`: reads the compact fingerprint
/// projection (which carries status, hire and termination dates), and only for users
/// whose state differs today reads the user and writes the new state with its event.
pub async fn sweep(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    today: Date,
) -> Result<SweepOutcome, EngineError> {
    let mut outcome = SweepOutcome::default();
    let projection = engine.store.user_fingerprints(&directory.id).await?;
    outcome.projection_reads = projection.len() as u64;
    let due: Vec<EmployeeId> = projection
        .into_iter()
        .filter(|f| f.state != UserState::Deleted)
        .filter(|f| {
            let l = &f.lifecycle;
            mapping::derive_state(
                l.status.as_deref(),
                l.hire_date,
                l.termination_date,
                today,
                directory.pre_start_days,
            ) != f.state
        })
        .map(|f| f.employee_id)
        .collect();
    for employee in due {
        for attempt in 1..=4 {
            let now = engine.clock.now();
            outcome.user_reads += 1;
            let Some(before) = engine.store.get_user(&directory.id, &employee).await? else {
                break;
            };
            let mut after = before.clone();
            if !mapping::refresh_state(&mut after, today, directory.pre_start_days) {
                break;
            }
            match write_if_changed(engine, directory, groups, Some(&before), after.clone(), now)
                .await
            {
                Ok(ApplyOutcome::Unchanged) => break,
                Ok(_) => {
                    outcome.changed += 1;
                    if after.state == UserState::Inactive {
                        outcome.deactivated += 1;
                    }
                    debug!(directory_id = %directory.id, employee_id = %employee, state = after.state.as_str(), "date transition applied");
                    break;
                }
                Err(EngineError::Store(StoreError::Conflict { .. })) if attempt < 4 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::DirectoryId;

    fn dir(tz: &str) -> Directory {
        let mut d = Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "s").unwrap();
        d.time_zone = tz.into();
        d
    }

    #[test]
    fn an_unknown_time_zone_falls_back_to_utc() {
        let now = OffsetDateTime::from_unix_timestamp(1_795_402_800).unwrap();
        assert_eq!(local_today(&dir("Mars/Olympus"), now), now.date());
        assert_eq!(
            local_today(&dir("Asia/Tokyo"), now),
            time::macros::date!(2026 - 11 - 23)
        );
    }
}
