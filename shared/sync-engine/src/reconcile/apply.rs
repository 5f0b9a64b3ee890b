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

/// Applies a record on top of the stored user (read here), retrying on conflicts with
/// a fresh read so a concurrent writer's change is merged, not overwritten.
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
        let after = mapping::apply(
            before.as_ref(),
            record,
            &context(directory, now, source_timestamp),
        );
        match write_if_changed(engine, directory, groups, before.as_ref(), after, now).await {
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

/// Marks a stored user deleted (BambooHR said so); a missing or already deleted user
/// is left alone.
pub async fn mark_deleted(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    employee: &domain::EmployeeId,
) -> Result<ApplyOutcome, EngineError> {
    mark_gone(engine, directory, groups, employee, UserState::Deleted).await
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
        if before.state == state || before.state == UserState::Deleted {
            return Ok(ApplyOutcome::Unchanged);
        }
        let mut after = before.clone();
        after.state = state;
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
