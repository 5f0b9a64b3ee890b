//! Applying one employee record to the stored user: map, fingerprint, and write only
//! when something changed, with the change event in the same conditional write.

use domain::{ChangeEvent, Directory, DirectoryUser, UserState};
use mapping::{ApplyContext, EmployeeRecord};
use ports::{StoreError, UserWrite};
use time::OffsetDateTime;

use crate::deps::Engine;
use crate::error::EngineError;
use crate::reconcile::groups::{membership_events, GroupBook};

/// Attempts before a run of write conflicts is reported instead of retried.
const MAX_CONFLICT_ATTEMPTS: u32 = 4;

/// What applying a record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// A new user was stored.
    Created,
    /// The stored user changed.
    Updated,
    /// Nothing changed: no write, no event.
    Unchanged,
    /// The entry is older than what is stored (its BambooHR timestamp is before the
    /// user's source timestamp, e.g. a late retry): nothing written. Only a caller
    /// that gives the entry's own timestamp gets this.
    Stale,
}

/// The context mapping needs, for this directory at this instant.
pub fn context(
    directory: &Directory,
    now: OffsetDateTime,
    source_timestamp: Option<OffsetDateTime>,
) -> ApplyContext {
    ApplyContext {
        directory_id: directory.id.clone(),
        // An unknown zone falls back to UTC; the run says so once (lifecycle::local_today).
        today: directory.today(now).unwrap_or_else(|_| now.date()),
        pre_start_days: directory.pre_start_days,
        source_timestamp,
        group_sources: directory
            .group_sources
            .iter()
            .map(|g| g.field.clone())
            .collect(),
    }
}

/// Writes `after` over `before` (same employee) with its events, when their
/// fingerprints differ: the user event, and a membership event for each group joined or
/// left (groups new to the directory are created first). A conflict is returned to the
/// caller, which re-reads and re-applies.
pub(crate) async fn write_if_changed(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    before: Option<&DirectoryUser>,
    mut after: DirectoryUser,
    now: OffsetDateTime,
) -> Result<ApplyOutcome, EngineError> {
    if let Some(b) = before {
        if b.fingerprint == after.fingerprint {
            // The employee is unchanged; what is stored shrinks when raw attributes
            // the directory no longer keeps (stored before its allowlist, or since
            // taken off it) were dropped: written once, without an event.
            if b.raw_attributes
                .keys()
                .any(|k| !after.raw_attributes.contains_key(k))
            {
                after.version = b.version + 1;
                let write = UserWrite {
                    user: after,
                    expected_version: Some(b.version),
                    events: Vec::new(),
                };
                engine.store.write_user(&write).await?;
            }
            return Ok(ApplyOutcome::Unchanged);
        }
    }
    after.created_at = before.map_or(Some(now), |b| b.created_at);
    let joined: Vec<mapping::GroupRef> = mapping::user_groups(&after, groups.sources())
        .into_iter()
        .filter(|g| before.is_none_or(|b| !b.group_ids.contains(&g.id)))
        .collect();
    groups.ensure(engine, directory, &joined, now).await?;
    let expected = before.map(|b| b.version);
    after.version = expected.unwrap_or(0) + 1;
    let mut events = vec![ChangeEvent::for_user_write(before, &after, now)];
    events.extend(membership_events(before, &after, now));
    let write = UserWrite {
        user: after,
        expected_version: expected,
        events,
    };
    engine.store.write_user(&write).await?;
    crate::reconcile::outbox::note_written(&write.events);
    Ok(if before.is_some() {
        ApplyOutcome::Updated
    } else {
        ApplyOutcome::Created
    })
}

/// Whether an entry BambooHR stamped `at` is older than what `stored` already holds.
/// An entry without a timestamp (a poll's read, which is BambooHR's state as it is)
/// is never stale, and neither is one for a user without a stored timestamp.
pub fn is_stale(stored: Option<&DirectoryUser>, at: Option<OffsetDateTime>) -> bool {
    match (stored.and_then(|u| u.source_timestamp), at) {
        (Some(stored), Some(at)) => at < stored,
        _ => false,
    }
}

/// Applies a record on top of the stored user (read here), retrying on conflicts with
/// a fresh read so a concurrent writer's change is merged, not overwritten.
///
/// `source_timestamp` is when BambooHR changed the employee, when the caller knows it
/// (a field-based webhook entry's `timestamp`). Such an entry older than the stored
/// user's source timestamp is [`ApplyOutcome::Stale`] and writes nothing. The stored
/// timestamp never goes back: a poll (no caller timestamp) keeps the later of the
/// stored one and the record's `lastChanged`, and a webhook entry newer than the
/// stored timestamp whose fields change nothing still records its timestamp (a write
/// without an event), so a later-arriving older entry is recognised as older.
pub async fn apply_record(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    record: &EmployeeRecord,
    source_timestamp: Option<OffsetDateTime>,
) -> Result<ApplyOutcome, EngineError> {
    crate::reconcile::outbox::note_touched(
        domain::UserId::derive(&directory.id, &record.employee_id).to_string(),
    );
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = engine.clock.now();
        let before = engine
            .store
            .get_user(&directory.id, &record.employee_id)
            .await?;
        if is_stale(before.as_ref(), source_timestamp) {
            return Ok(ApplyOutcome::Stale);
        }
        let mut after = mapping::apply(
            before.as_ref(),
            record,
            &context(directory, now, source_timestamp),
        );
        let stored_at = before.as_ref().and_then(|b| b.source_timestamp);
        after.source_timestamp = after.source_timestamp.max(stored_at);
        let written = match before.as_ref() {
            Some(b)
                if b.fingerprint == after.fingerprint
                    && source_timestamp.is_some()
                    && after.source_timestamp > stored_at =>
            {
                advance_timestamp(engine, b, after).await
            }
            _ => write_if_changed(engine, directory, groups, before.as_ref(), after, now).await,
        };
        match written {
            Ok(outcome) => return Ok(outcome),
            Err(EngineError::Store(StoreError::Conflict { what, .. }))
                if attempts < MAX_CONFLICT_ATTEMPTS =>
            {
                tracing::debug!(directory_id = %directory.id, what = %what, attempts, "write conflict; re-reading");
            }
            Err(EngineError::Store(StoreError::Conflict { what, .. })) => {
                return Err(EngineError::TooManyConflicts { what, attempts })
            }
            Err(e) => return Err(e),
        }
    }
}

/// Records a newer source timestamp on an otherwise unchanged user (`after`, the same
/// fingerprint, which also drops raw attributes the directory no longer keeps): a
/// version bump without an event (targets have nothing new to hear; a gap in versions
/// is harmless to the ledger). Reported as unchanged.
async fn advance_timestamp(
    engine: &Engine,
    before: &DirectoryUser,
    mut user: DirectoryUser,
) -> Result<ApplyOutcome, EngineError> {
    user.created_at = before.created_at;
    user.version = before.version + 1;
    engine
        .store
        .write_user(&UserWrite {
            user,
            expected_version: Some(before.version),
            events: Vec::new(),
        })
        .await?;
    Ok(ApplyOutcome::Unchanged)
}

/// Marks a stored user deleted (BambooHR said so); a missing or already deleted user
/// is left alone.
pub async fn mark_deleted(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    employee: &domain::EmployeeId,
) -> Result<ApplyOutcome, EngineError> {
    mark_gone_at(
        engine,
        directory,
        groups,
        employee,
        UserState::Deleted,
        None,
    )
    .await
}

/// Marks a stored user `state` (deleted, or inactive for directories that keep users
/// missing from BambooHR as inactive); a missing user, or one already in that state or
/// deleted, is left alone.
pub async fn mark_gone(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    employee: &domain::EmployeeId,
    state: UserState,
) -> Result<ApplyOutcome, EngineError> {
    mark_gone_at(engine, directory, groups, employee, state, None).await
}

/// [`mark_gone`] for an entry BambooHR stamped `at` (a webhook's `Deleted` entry): an
/// entry older than the stored user's source timestamp is [`ApplyOutcome::Stale`] and
/// writes nothing; a newer one records its timestamp.
pub async fn mark_gone_at(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    employee: &domain::EmployeeId,
    state: UserState,
    at: Option<OffsetDateTime>,
) -> Result<ApplyOutcome, EngineError> {
    crate::reconcile::outbox::note_touched(
        domain::UserId::derive(&directory.id, employee).to_string(),
    );
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = engine.clock.now();
        let Some(before) = engine.store.get_user(&directory.id, employee).await? else {
            return Ok(ApplyOutcome::Unchanged);
        };
        if is_stale(Some(&before), at) {
            return Ok(ApplyOutcome::Stale);
        }
        if before.state == state || before.state == UserState::Deleted {
            return Ok(ApplyOutcome::Unchanged);
        }
        let mut after = before.clone();
        after.state = state;
        after.source_timestamp = after.source_timestamp.max(at);
        if state == UserState::Deleted {
            // A deleted user belongs to no group; its memberships end with it.
            after.group_ids.clear();
        }
        after.refresh_fingerprint();
        match write_if_changed(engine, directory, groups, Some(&before), after, now).await {
            Ok(outcome) => return Ok(outcome),
            Err(EngineError::Store(StoreError::Conflict { .. }))
                if attempts < MAX_CONFLICT_ATTEMPTS => {}
            Err(EngineError::Store(StoreError::Conflict { what, .. })) => {
                return Err(EngineError::TooManyConflicts { what, attempts })
            }
            Err(e) => return Err(e),
        }
    }
}
