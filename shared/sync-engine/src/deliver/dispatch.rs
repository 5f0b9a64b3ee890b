//! Fan-out of one change event to a directory's targets. Each delivery carries the
//! object's current stored state (state transfer) and is recorded in a per
//! (object, target) ledger, so a duplicate or reordered event never pushes older data
//! and a target that already has a version is not sent it again.
//!
//! A target that fails in a way a retry may fix does not hold up the others, nor the
//! object's later changes: the failed (object, target)
//! pair leaves the ordered change queue for the retry path ([`crate::deliver::retry`]), where
//! each attempt re-reads the current state. A target answering 410 Gone is disabled (a
//! conditional directory write) and a `directory.target_disabled` event is published.
//! A per-target circuit breaker sends deliveries straight to the retry path while a
//! target fails everything. Every outcome is written to the delivery log.
//!
//! A user who leaves an HTTP upsert target's gate (its filter) after the target had
//! them is sent once more, deactivated, when the target's choice says so.

use std::time::Duration;

use domain::{
    ChangeEvent, Directory, DirectoryUser, EmployeeId, EventType, GateExit, Target, TargetId,
    TargetKind, UserState,
};
use ports::{
    BreakerState, DeadLetter, DeliveryRecord, DeliveryStatus, LedgerAdvance, RetryTask, StoreError,
};
use tracing::{info, warn};

use crate::deliver::retry;
use crate::deps::Engine;
use crate::error::EngineError;

pub use crate::deliver::attempt::{DispatchReport, TargetOutcome};
use crate::deliver::targets;

fn employee_of(event: &ChangeEvent) -> Option<EmployeeId> {
    event
        .data
        .get("employeeId")
        .and_then(|v| v.as_str())
        .and_then(|s| EmployeeId::parse(s).ok())
}

/// The event to deliver and the user's current state: for user events, what is stored
/// now rather than what the event carried, so a late duplicate never undoes a newer
/// change.
pub(crate) async fn current_state(
    engine: &Engine,
    directory: &Directory,
    event: &ChangeEvent,
) -> Result<(ChangeEvent, Option<DirectoryUser>), EngineError> {
    if !event.event_type.is_user_event() {
        return Ok((event.clone(), None));
    }
    let current = match employee_of(event) {
        Some(emp) => engine.store.get_user(&directory.id, &emp).await?,
        None => None,
    };
    Ok(match current {
        Some(u) if u.version > event.version => {
            let event_type = if u.state == UserState::Deleted {
                EventType::UserDeleted
            } else {
                event.event_type
            };
            let mut ev = ChangeEvent::for_user(event_type, &u, event.occurred_at);
            // The newer version's own previous values are not at hand: keep the ones
            // this event carried that still differ from what is stored now.
            if event_type == EventType::UserUpdated {
                let now = serde_json::to_value(&u).unwrap_or_default();
                ev.previous_attributes = event.previous_attributes.as_ref().map(|p| {
                    p.iter()
                        .filter(|(k, v)| now.get(k.as_str()) != Some(*v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                });
            }
            (ev, Some(u))
        }
        Some(u) => (event.clone(), Some(u)),
        None => (event.clone(), None),
    })
}

/// Delivers one event to every enabled target of its directory.
pub async fn dispatch(engine: &Engine, event: &ChangeEvent) -> Result<DispatchReport, EngineError> {
    engine.retry_queue()?;
    let directory = engine
        .store
        .get_directory(&event.directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(event.directory_id.clone()))?;
    // A revoked directory's queued changes reach nobody; only its revocation does.
    if directory.state == domain::DirectoryState::Revoked
        && event.event_type != EventType::DirectoryRevoked
    {
        return Err(EngineError::DirectoryNotActive {
            id: directory.id.clone(),
            state: "revoked",
        });
    }
    let (delivery, user) = current_state(engine, &directory, event).await?;
    // The dispatcher reads only the target credentials (IAM allows it no other part).
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Targets])
        .await?;
    let mut report = DispatchReport::default();
    // Targets are independent (own ledger, log, breaker and retries), so they are
    // delivered concurrently: a slow or timing-out target adds its own latency to the
    // message, not the sum of everyone's.
    let enabled: Vec<&Target> = directory.targets.iter().filter(|t| t.enabled).collect();
    let outcomes = futures::future::join_all(enabled.iter().map(|target| {
        deliver_and_record(
            engine,
            &directory,
            target,
            &delivery,
            user.as_ref(),
            &secrets,
            None,
            false,
        )
    }))
    .await;
    for (target, outcome) in enabled.into_iter().zip(outcomes) {
        report.targets.push((target.id.clone(), outcome?));
    }
    Ok(report)
}

fn log_outcome(directory: &Directory, target: &Target, event: &ChangeEvent, o: &TargetOutcome) {
    match o {
        TargetOutcome::Delivered { status, version } => info!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            status, version, "delivered"
        ),
        TargetOutcome::Skipped { reason } => info!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, "delivery skipped"
        ),
        TargetOutcome::Failed { reason, retryable } => warn!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, retryable, "delivery failed"
        ),
        TargetOutcome::Scheduled {
            reason,
            retries,
            next_attempt_at,
        } => warn!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, retries, next_attempt_at = %next_attempt_at, "delivery will be retried"
        ),
    }
}

/// One delivery of `event` to `target`, from the change queue (`task` None) or from
/// the retry path, with everything that follows from its outcome: ledger, breaker,
/// retry or dead letter, 410 handling and the delivery log. `force` (a re-push)
/// delivers even a version the ledger already holds.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn deliver_and_record(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    secrets: &ports::DirectorySecrets,
    task: Option<&RetryTask>,
    force: bool,
) -> Result<TargetOutcome, EngineError> {
    let now = engine.clock.now();
    let mut record = DeliveryRecord {
        directory_id: directory.id.clone(),
        target_id: target.id.clone(),
        object_id: event.object_id.clone(),
        event_id: event.id.clone(),
        version: event.version,
        status: DeliveryStatus::Skipped,
        attempts: task.map_or(1, |t| t.retries + 2),
        status_codes: Vec::new(),
        last_error: None,
        skipped_reason: None,
        first_attempt_at: task.map_or(now, |t| t.first_failed_at),
        last_attempt_at: now,
        next_attempt_at: None,
        gate_exit: false,
    };

    let ledger = engine
        .store
        .ledger_get(&directory.id, &target.id, &event.object_id)
        .await?;
    if let Some(u) = user {
        // A deleted user still reaches targets that got the user before, so they can
        // deprovision. One they never got is judged by the filter without its state
        // criterion, so a gated target (e.g. only "Litmos Access" users) never hears
        // of someone it was not meant to have.
        let verdict = match (u.state, ledger) {
            (UserState::Deleted, Some(_)) => Ok(()),
            (UserState::Deleted, None) => target.filter.admits(u, false),
            _ => target.admits(u),
        };
        if let Err(reason) = verdict {
            match gate_exit_due(engine, directory, target, ledger, &event.object_id).await? {
                GateExitDue::Send => record.gate_exit = true,
                due => {
                    // A record of a deactivation already sent keeps saying so, so the
                    // next change while the user stays outside sends nothing either.
                    record.gate_exit = due == GateExitDue::AlreadySent;
                    record.skipped_reason = Some(reason.clone());
                    engine.store.put_delivery(&record).await?;
                    let outcome = TargetOutcome::Skipped { reason };
                    log_outcome(directory, target, event, &outcome);
                    return Ok(outcome);
                }
            }
        }
    }
    if let Some(done) = ledger {
        if done >= event.version && !force {
            // The log already holds the delivery of `done`; a duplicate changes nothing.
            return Ok(TargetOutcome::Skipped {
                reason: format!("already delivered version {done}"),
            });
        }
    }

    let breaker = engine.store.get_breaker(&directory.id, &target.id).await?;
    if breaker.is_open(now) {
        // Do not call a target that fails everything; wait for the breaker, without
        // spending one of the delivery's retries.
        let wait = breaker
            .open_until
            .map_or(Duration::ZERO, |t| (t - now).unsigned_abs());
        let retries = task.map_or(0, |t| t.retries);
        // No call is made: the log counts only the attempts before this one.
        record.attempts = task.map_or(0, |t| t.retries + 1);
        let reason = "circuit breaker open: the target failed every recent delivery".to_string();
        return schedule(
            engine, directory, target, event, task, retries, wait, reason, record,
        )
        .await;
    }

    let attempt = targets::attempt(
        engine,
        directory,
        target,
        event,
        user,
        secrets,
        record.gate_exit,
    )
    .await;
    if let Some(status) = attempt.status {
        // A retry continues the pair's history of status codes.
        if task.is_some() {
            if let Some(prev) = engine
                .store
                .get_delivery(&directory.id, &target.id, &event.object_id)
                .await?
            {
                record.status_codes = prev.status_codes;
            }
        }
        record.push_status(status);
    }

    let outcome = match attempt.outcome.clone() {
        TargetOutcome::Delivered { .. } => {
            // The log before the ledger: a crash (or a failed write) between the two
            // then leaves the ledger behind, so the redelivered message sends the
            // version again (a harmless duplicate, same webhook-id) and advances it.
            // The other order left a delivered version the log never showed: the
            // redelivery found the ledger at that version and skipped without a
            // record (found by the fault suite's killed dispatchers).
            record.status = DeliveryStatus::Delivered;
            engine.store.put_delivery(&record).await?;
            if let LedgerAdvance::AlreadyAt { current } = engine
                .store
                .ledger_advance(&directory.id, &target.id, &event.object_id, event.version)
                .await?
            {
                // A concurrent delivery of a newer version won; ours was harmless
                // (receivers see the stable webhook-id and version).
                info!(directory_id = %directory.id, target_id = %target.id, current, "ledger already ahead");
            }
            if breaker != BreakerState::default() {
                engine
                    .store
                    .put_breaker(&directory.id, &target.id, &BreakerState::default())
                    .await?;
            }
            // Written above; once per delivery.
            log_outcome(directory, target, event, &attempt.outcome);
            return Ok(attempt.outcome);
        }
        TargetOutcome::Skipped { reason } => {
            record.skipped_reason = Some(reason);
            attempt.outcome
        }
        TargetOutcome::Failed { reason, .. } if attempt.is_gone() => {
            record.status = DeliveryStatus::Failed;
            record.last_error = Some(format!("{reason}; target disabled"));
            disable_target(engine, directory, &target.id).await?;
            TargetOutcome::Failed {
                reason: format!("{reason}: the target is gone and has been disabled"),
                retryable: false,
            }
        }
        TargetOutcome::Failed {
            reason,
            retryable: true,
        } => {
            let opened = retry::breaker_after_failure(breaker, now);
            engine
                .store
                .put_breaker(&directory.id, &target.id, &opened)
                .await?;
            if opened.is_open(now) && !breaker.is_open(now) {
                warn!(directory_id = %directory.id, target_id = %target.id,
                      failures = opened.consecutive_failures, "circuit breaker opened");
            }
            let retries = task.map_or(0, |t| t.retries + 1);
            match retry::delay_before(retries, attempt.retry_after) {
                Some(delay) => {
                    return schedule(
                        engine, directory, target, event, task, retries, delay, reason, record,
                    )
                    .await;
                }
                None => {
                    let queue = engine.retry_queue()?;
                    let first = task.map_or(now, |t| t.first_failed_at);
                    let letter = DeadLetter {
                        task: RetryTask {
                            target_id: target.id.clone(),
                            event: event.clone(),
                            retries,
                            due_at: now,
                            first_failed_at: first,
                            last_error: reason.clone(),
                            force: task.is_some_and(|t| t.force),
                        },
                        reason: format!(
                            "{} attempts failed over {} hours",
                            retries + 1,
                            (now - first).whole_hours()
                        ),
                    };
                    queue.dead_letter(&letter).await?;
                    record.status = DeliveryStatus::DeadLettered;
                    record.last_error = Some(reason.clone());
                    TargetOutcome::Failed {
                        reason: format!("{reason}; dead-lettered after {} attempts", retries + 1),
                        retryable: false,
                    }
                }
            }
        }
        TargetOutcome::Failed { reason, .. } => {
            record.status = DeliveryStatus::Failed;
            record.last_error = Some(reason);
            attempt.outcome
        }
        TargetOutcome::Scheduled { .. } => attempt.outcome,
    };
    engine.store.put_delivery(&record).await?;
    log_outcome(directory, target, event, &outcome);
    Ok(outcome)
}

/// What a user the target's filter now refuses is owed by the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateExitDue {
    /// Nothing: the target never had the user, or its choice is to leave it as is.
    Nothing,
    /// One delivery with the user deactivated.
    Send,
    /// Nothing more: the deactivation was sent already.
    AlreadySent,
}

/// Whether a user the filter refuses is leaving an HTTP upsert target's gate and must
/// be deactivated there once: only when the target had the user (its ledger holds a
/// version), its choice is [`GateExit::Deactivate`], and the last record of the pair
/// is not that deactivation already delivered (or skipped after it).
async fn gate_exit_due(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    ledger: Option<u64>,
    object_id: &str,
) -> Result<GateExitDue, EngineError> {
    let TargetKind::HttpUpsert { gate_exit, .. } = &target.kind else {
        return Ok(GateExitDue::Nothing);
    };
    if *gate_exit != GateExit::Deactivate || ledger.is_none() {
        return Ok(GateExitDue::Nothing);
    }
    let last = engine
        .store
        .get_delivery(&directory.id, &target.id, object_id)
        .await?;
    Ok(match last {
        Some(r)
            if r.gate_exit
                && matches!(
                    r.status,
                    DeliveryStatus::Delivered | DeliveryStatus::Skipped
                ) =>
        {
            GateExitDue::AlreadySent
        }
        _ => GateExitDue::Send,
    })
}

/// Hands the pair to the retry queue and logs it as retrying.
#[allow(clippy::too_many_arguments)]
async fn schedule(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    task: Option<&RetryTask>,
    retries: u32,
    delay: Duration,
    reason: String,
    mut record: DeliveryRecord,
) -> Result<TargetOutcome, EngineError> {
    let queue = engine.retry_queue()?;
    let now = engine.clock.now();
    let due_at = now + delay;
    let next = RetryTask {
        target_id: target.id.clone(),
        event: event.clone(),
        retries,
        due_at,
        first_failed_at: task.map_or(now, |t| t.first_failed_at),
        last_error: reason.clone(),
        force: task.is_some_and(|t| t.force),
    };
    queue.schedule(&next, delay).await?;
    record.status = DeliveryStatus::Retrying;
    record.last_error = Some(reason.clone());
    record.next_attempt_at = Some(due_at);
    engine.store.put_delivery(&record).await?;
    let outcome = TargetOutcome::Scheduled {
        reason,
        retries,
        next_attempt_at: due_at,
    };
    log_outcome(directory, target, event, &outcome);
    Ok(outcome)
}

/// Disables a target that answered 410 Gone, with a write conditional on the
/// directory version read (re-read on conflict), and publishes
/// `directory.target_disabled`.
pub(crate) async fn disable_target(
    engine: &Engine,
    directory: &Directory,
    target_id: &TargetId,
) -> Result<(), EngineError> {
    const ATTEMPTS: u32 = 5;
    let mut current = directory.clone();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            current = engine
                .store
                .get_directory(&directory.id)
                .await?
                .ok_or_else(|| EngineError::DirectoryNotFound(directory.id.clone()))?;
        }
        let Some(t) = current.targets.iter_mut().find(|t| &t.id == target_id) else {
            return Ok(());
        };
        if !t.enabled {
            return Ok(());
        }
        t.enabled = false;
        let expected = current.version;
        current.version += 1;
        match engine.store.put_directory(&current, Some(expected)).await {
            Ok(()) => {
                warn!(directory_id = %directory.id, target_id = %target_id, "target answered 410 Gone; disabled");
                let event = ChangeEvent::new(
                    EventType::DirectoryTargetDisabled,
                    directory.id.clone(),
                    directory.id.as_str(),
                    current.version,
                    engine.clock.now(),
                    serde_json::json!({ "targetId": target_id.as_str(), "status": 410 }),
                );
                let published = engine.bus.publish(std::slice::from_ref(&event)).await?;
                if !published.all_published() {
                    warn!(directory_id = %directory.id, target_id = %target_id,
                          "the target_disabled event was not accepted by the bus");
                }
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::TooManyConflicts {
        what: format!("directory {} (disabling target {target_id})", directory.id),
        attempts: ATTEMPTS,
    })
}
