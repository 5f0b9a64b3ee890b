//! Applying one employee record to the stored user: map, fingerprint, and write only
//! when something changed, with the change event in the same conditional write.

use domain::{ChangeEvent, Directory, DirectoryUser, EventType, UserState};
use mapping::{ApplyContext, EmployeeRecord};
use ports::{StoreError, UserWrite};
use time::OffsetDateTime;

use crate::deps::Engine;
use crate::error::EngineError;

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

/// The event a user write causes.
pub fn event_for(
    before: Option<&DirectoryUser>,
    after: &DirectoryUser,
    at: OffsetDateTime,
) -> ChangeEvent {
    let event_type = match (before, after.state) {
        (_, UserState::Deleted) => EventType::UserDeleted,
        (None, _) => EventType::UserCreated,
        (Some(b), _) if b.state == UserState::Deleted => EventType::UserCreated,
        (Some(_), _) => EventType::UserUpdated,
    };
    event_for_type(event_type, after, at)
}

/// An event of a given type carrying `user` as it is now.
pub fn event_for_type(
    event_type: EventType,
    user: &DirectoryUser,
    at: OffsetDateTime,
) -> ChangeEvent {
    ChangeEvent::new(
        event_type,
        user.directory_id.clone(),
        user.id.as_str(),
        user.version,
        at,
        serde_json::to_value(user).expect("a DirectoryUser serializes"),
    )
}

/// The context mapping needs, for this directory at this instant.
pub fn context(
    directory: &Directory,
    now: OffsetDateTime,
    source_timestamp: Option<OffsetDateTime>,
) -> ApplyContext {
    ApplyContext {
        directory_id: directory.id.clone(),
        today: now.date(),
        pre_start_days: directory.pre_start_days,
        source_timestamp,
        group_sources: Vec::new(),
    }
}

/// Writes `after` over `before` (same employee) with its event, when their fingerprints
/// differ. A conflict is returned to the caller, which re-reads and re-applies.
async fn write_if_changed(
    engine: &Engine,
    before: Option<&DirectoryUser>,
    mut after: DirectoryUser,
    now: OffsetDateTime,
) -> Result<ApplyOutcome, StoreError> {
    if let Some(b) = before {
        if b.fingerprint == after.fingerprint {
            return Ok(ApplyOutcome::Unchanged);
        }
    }
    let expected = before.map(|b| b.version);
    after.version = expected.unwrap_or(0) + 1;
    let event = event_for(before, &after, now);
    engine
        .store
        .write_user(&UserWrite {
            user: after,
            expected_version: expected,
            events: vec![event],
        })
        .await?;
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
    record: &EmployeeRecord,
    source_timestamp: Option<OffsetDateTime>,
) -> Result<ApplyOutcome, EngineError> {
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
        match write_if_changed(engine, before.as_ref(), after, now).await {
            Ok(outcome) => return Ok(outcome),
            Err(StoreError::Conflict { what, .. }) if attempts < MAX_CONFLICT_ATTEMPTS => {
                tracing::debug!(directory_id = %directory.id, what = %what, attempts, "write conflict; re-reading");
            }
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts })
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Marks a stored user deleted (BambooHR said so); a missing or already deleted user
/// is left alone.
pub async fn mark_deleted(
    engine: &Engine,
    directory: &Directory,
    employee: &domain::EmployeeId,
) -> Result<ApplyOutcome, EngineError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = engine.clock.now();
        let Some(before) = engine.store.get_user(&directory.id, employee).await? else {
            return Ok(ApplyOutcome::Unchanged);
        };
        if before.state == UserState::Deleted {
            return Ok(ApplyOutcome::Unchanged);
        }
        let mut after = before.clone();
        after.state = UserState::Deleted;
        after.refresh_fingerprint();
        match write_if_changed(engine, Some(&before), after, now).await {
            Ok(outcome) => return Ok(outcome),
            Err(StoreError::Conflict { .. }) if attempts < MAX_CONFLICT_ATTEMPTS => {}
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts })
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The full-sync fast path: when the record alone (on no stored user) already
/// fingerprints like the stored projection, the user is unchanged and its item is never
/// read. Otherwise fall back to the read-merge-write path.
pub async fn apply_full_record(
    engine: &Engine,
    directory: &Directory,
    record: &EmployeeRecord,
    stored_fingerprint: Option<&domain::Fingerprint>,
) -> Result<ApplyOutcome, EngineError> {
    if let Some(fp) = stored_fingerprint {
        let candidate = mapping::apply(None, record, &context(directory, engine.clock.now(), None));
        if &candidate.fingerprint == fp {
            return Ok(ApplyOutcome::Unchanged);
        }
    }
    apply_record(engine, directory, record, None).await
}
