//! The retry path and replays: running a retry task from the retry queue, re-driving
//! dead-lettered deliveries, and re-pushing the current state of a directory (or one
//! user) to one target, which the operator CLI calls.

use std::collections::BTreeMap;

use domain::{DirectoryId, EmployeeId, EventType, TargetId, UserState};
use ports::RetryTask;
use serde::Serialize;
use tracing::info;

use crate::deliver::attempt::TargetOutcome;
use crate::deliver::dispatch::{current_state, deliver_and_record};
use crate::deps::Engine;
use crate::error::EngineError;

/// What became of one retry task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RetryOutcome {
    /// It arrived before its due time (the queue caps one delay) and was sent back.
    NotDue,
    /// The target was removed or disabled since; nothing was sent.
    TargetGone,
    /// It was attempted.
    Attempted {
        /// The attempt's outcome (possibly scheduled again, or dead-lettered).
        outcome: TargetOutcome,
    },
}

/// A retry may arrive up to this much early (queue delays are whole seconds).
const EARLY_TOLERANCE: time::Duration = time::Duration::seconds(1);

/// Runs one retry task: re-reads the directory, the target and the object's current
/// state, and delivers it (or re-queues the task while it is not yet due).
pub async fn run_retry(engine: &Engine, task: &RetryTask) -> Result<RetryOutcome, EngineError> {
    let queue = engine.retry_queue()?;
    let now = engine.clock.now();
    if task.due_at > now + EARLY_TOLERANCE {
        let wait = (task.due_at - now).unsigned_abs();
        queue.schedule(task, wait).await?;
        return Ok(RetryOutcome::NotDue);
    }
    let directory_id = &task.event.directory_id;
    let Some(directory) = engine.store.get_directory(directory_id).await? else {
        info!(directory_id = %directory_id, "retry dropped: the directory is gone");
        return Ok(RetryOutcome::TargetGone);
    };
    let Some(target) = directory
        .targets
        .iter()
        .find(|t| t.id == task.target_id && t.enabled)
    else {
        info!(directory_id = %directory_id, target_id = %task.target_id,
              "retry dropped: the target was removed or disabled");
        return Ok(RetryOutcome::TargetGone);
    };
    let (delivery, user) = current_state(engine, &directory, &task.event).await?;
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Targets])
        .await?;
    let outcome = deliver_and_record(
        engine,
        &directory,
        target,
        &delivery,
        user.as_ref(),
        &secrets,
        Some(task),
        task.force,
    )
    .await?;
    Ok(RetryOutcome::Attempted { outcome })
}

/// Moves up to `max` dead-lettered deliveries back onto the retry path with a fresh
/// schedule; each then re-reads the current state like any retry. Returns how many
/// were re-driven, per directory.
pub async fn redrive_dead_letters(
    engine: &Engine,
    max: usize,
    only: Option<&DirectoryId>,
) -> Result<BTreeMap<DirectoryId, usize>, EngineError> {
    let queue = engine.retry_queue()?;
    let now = engine.clock.now();
    let mut by_directory: BTreeMap<DirectoryId, usize> = BTreeMap::new();
    let mut done = 0;
    while done < max {
        let letters = match only {
            Some(directory) => queue.receive_dead_letters_of(directory, max - done).await?,
            None => queue.receive_dead_letters(max - done).await?,
        };
        if letters.is_empty() {
            break;
        }
        let mut receipts = Vec::with_capacity(letters.len());
        for received in letters {
            let task = RetryTask {
                retries: 0,
                due_at: now,
                first_failed_at: now,
                ..received.letter.task
            };
            queue.schedule(&task, std::time::Duration::ZERO).await?;
            *by_directory
                .entry(task.event.directory_id.clone())
                .or_insert(0) += 1;
            receipts.push(received.receipt);
        }
        // Acknowledged only once re-queued: a crash in between re-drives twice, which
        // the ledger makes harmless.
        queue.ack_dead_letters(&receipts).await?;
        done += receipts.len();
    }
    info!(
        count = done,
        directories = by_directory.len(),
        "dead letters re-driven"
    );
    Ok(by_directory)
}

/// Queues a re-push of every user of a directory to one target on the retry path, one
/// forced task a user, for the retry consumer to deliver (each re-reads the current
/// state, whatever the ledger says): a whole directory takes longer than a request.
/// Returns how many were queued.
pub async fn queue_repush(
    engine: &Engine,
    directory_id: &DirectoryId,
    target_id: &TargetId,
) -> Result<usize, EngineError> {
    let queue = engine.retry_queue()?;
    let directory = engine
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(directory_id.clone()))?;
    if !directory.targets.iter().any(|t| &t.id == target_id) {
        return Err(EngineError::TargetNotFound(target_id.clone()));
    }
    let now = engine.clock.now();
    let users = engine.store.list_users(directory_id).await?;
    for user in &users {
        let event_type = if user.state == UserState::Deleted {
            EventType::UserDeleted
        } else {
            EventType::UserUpdated
        };
        let task = RetryTask {
            target_id: target_id.clone(),
            event: domain::ChangeEvent::for_user(event_type, user, now),
            retries: 0,
            due_at: now,
            first_failed_at: now,
            last_error: "re-push requested by an operator".into(),
            force: true,
        };
        queue.schedule(&task, std::time::Duration::ZERO).await?;
    }
    info!(directory_id = %directory_id, target_id = %target_id, count = users.len(), "re-push queued");
    Ok(users.len())
}

/// Re-pushes the current state of every user of a directory (or of one employee) to
/// one target, whatever its ledger says: for a target that lost its data, or after a
/// mapping change. Filters still apply; failures take the retry path as usual.
pub async fn repush(
    engine: &Engine,
    directory_id: &DirectoryId,
    target_id: &TargetId,
    employee: Option<&EmployeeId>,
) -> Result<Vec<(String, TargetOutcome)>, EngineError> {
    let directory = engine
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(directory_id.clone()))?;
    let Some(target) = directory.targets.iter().find(|t| &t.id == target_id) else {
        return Err(EngineError::TargetNotFound(target_id.clone()));
    };
    let users = match employee {
        Some(e) => engine
            .store
            .get_user(directory_id, e)
            .await?
            .into_iter()
            .collect(),
        None => engine.store.list_users(directory_id).await?,
    };
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Targets])
        .await?;
    let now = engine.clock.now();
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let event_type = if user.state == UserState::Deleted {
            EventType::UserDeleted
        } else {
            EventType::UserUpdated
        };
        let event = domain::ChangeEvent::for_user(event_type, &user, now);
        let outcome = deliver_and_record(
            engine,
            &directory,
            target,
            &event,
            Some(&user),
            &secrets,
            None,
            true,
        )
        .await?;
        out.push((user.id.to_string(), outcome));
    }
    info!(directory_id = %directory_id, target_id = %target_id, count = out.len(), "current state re-pushed");
    Ok(out)
}
