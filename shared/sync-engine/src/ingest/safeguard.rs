//! The mass-change safeguard for webhooks. A webhook carries one employee or a few, so
//! its deactivations and deletions are counted over the safeguard's window
//! ([`domain::Safeguard::window_minutes`]) instead of per delivery: once those applied
//! in the window plus this delivery's would trip the safeguard as one run's would, the
//! delivery's deactivations and deletions are held for an operator with the poller's
//! hold (the directory becomes `held`, `directory.held` is published), and recorded as
//! refresh requests so they stay durable. The webhook still answers 2xx: the change
//! was accepted, it waits for the operator. A release makes the next run a full one
//! that applies what BambooHR says without the safeguard, once (see
//! [`crate::operate::holds`]); while the directory is held, further webhook
//! deactivations join the hold.

use domain::{
    ChangeEvent, Directory, DirectoryState, EmployeeId, EventType, Hold, RunId, UserState,
};
use mapping::EmployeeRecord;
use ports::StoreError;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::IngestReport;
use crate::deps::Engine;
use crate::error::EngineError;
use crate::reconcile::apply::{apply_record, mark_gone_at, ApplyOutcome};
use crate::reconcile::groups::GroupBook;

/// Employee ids a hold keeps for the operator to check.
const SAMPLE: usize = 50;

/// A deactivation or deletion a webhook asked for, kept back until the safeguard
/// decided.
pub(super) enum Removal {
    /// A field-based entry whose fields make a live user inactive.
    Deactivate {
        record: EmployeeRecord,
        at: Option<OffsetDateTime>,
    },
    /// A `Deleted` entry (or an `employee.deleted` event) for a live user.
    Delete {
        employee: EmployeeId,
        at: Option<OffsetDateTime>,
    },
}

impl Removal {
    fn employee(&self) -> &EmployeeId {
        match self {
            Removal::Deactivate { record, .. } => &record.employee_id,
            Removal::Delete { employee, .. } => employee,
        }
    }
}

/// Whether a user in `state` counts as live for the safeguard (as the poller counts).
pub(super) fn is_live(state: UserState) -> bool {
    matches!(state, UserState::Active | UserState::Pending)
}

/// What the safeguard decided for a delivery's removals.
enum Decision {
    /// Within bounds and counted in the window: apply them.
    Apply,
    /// Held (a new hold, or joined to the directory's hold).
    Held { new_hold: Option<Hold> },
}

/// Counts, applies or holds a delivery's deactivations and deletions.
pub(super) async fn settle(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    removals: Vec<Removal>,
    report: &mut IngestReport,
) -> Result<(), EngineError> {
    if removals.is_empty() {
        return Ok(());
    }
    let id = &directory.id;
    let now = engine.clock.now();
    let active_before = engine
        .store
        .user_fingerprints(id)
        .await?
        .iter()
        .filter(|f| is_live(f.state))
        .count() as u64;
    let deactivate = removals
        .iter()
        .filter(|r| matches!(r, Removal::Deactivate { .. }))
        .count() as u64;
    let delete = removals.len() as u64 - deactivate;
    let ids: Vec<EmployeeId> = removals.iter().map(|r| r.employee().clone()).collect();

    let decision = decide(
        engine,
        directory,
        now,
        active_before,
        deactivate,
        delete,
        &ids,
    )
    .await?;
    match decision {
        Decision::Apply => {
            for removal in &removals {
                let outcome = match removal {
                    Removal::Deactivate { record, at } => {
                        apply_record(engine, directory, groups, record, *at).await?
                    }
                    Removal::Delete { employee, at } => {
                        mark_gone_at(engine, directory, groups, employee, UserState::Deleted, *at)
                            .await?
                    }
                };
                match (outcome, removal) {
                    (ApplyOutcome::Stale, _) => report.stale += 1,
                    (ApplyOutcome::Unchanged, _) => report.unchanged += 1,
                    (ApplyOutcome::Created, _) => report.created += 1,
                    (ApplyOutcome::Updated, Removal::Deactivate { .. }) => report.updated += 1,
                    (ApplyOutcome::Updated, Removal::Delete { .. }) => report.deleted += 1,
                }
            }
        }
        Decision::Held { new_hold } => {
            // Durable while held: the employees are asked to be refreshed, and a
            // release's full run reads them from BambooHR anyway.
            engine.store.record_refresh_requests(id, &ids, now).await?;
            report.held += removals.len();
            if let Some(hold) = new_hold {
                let version = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
                let event = ChangeEvent::new(
                    EventType::DirectoryHeld,
                    id.clone(),
                    id.as_str(),
                    version,
                    now,
                    serde_json::to_value(&hold).expect("a hold serializes"),
                );
                engine
                    .store
                    .append_events(id, std::slice::from_ref(&event))
                    .await?;
                crate::reconcile::outbox::note_written(std::slice::from_ref(&event));
            }
        }
    }
    Ok(())
}

/// Decides on the stored directory (re-read, so concurrent webhooks count together),
/// and records the decision on it: the removals counted in the window, or the hold.
async fn decide(
    engine: &Engine,
    directory: &Directory,
    now: OffsetDateTime,
    active_before: u64,
    deactivate: u64,
    delete: u64,
    ids: &[EmployeeId],
) -> Result<Decision, EngineError> {
    let id = &directory.id;
    let n = deactivate + delete;
    for attempt in 1..=4 {
        let Some(mut d) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        let expected = d.version;
        d.version += 1;
        let in_window = d.webhook_removals_in_window(now);
        let decision = if d.state == DirectoryState::Held {
            let hold = d.hold.get_or_insert_with(|| Hold {
                run_id: RunId::new(now, rand::random()),
                at: now,
                would_deactivate: 0,
                would_delete: 0,
                active_before,
                sample: Vec::new(),
            });
            hold.would_deactivate += deactivate;
            hold.would_delete += delete;
            for e in ids {
                if hold.sample.len() < SAMPLE && !hold.sample.iter().any(|s| s == e.as_str()) {
                    hold.sample.push(e.to_string());
                }
            }
            Decision::Held { new_hold: None }
        } else if d.safeguard_trips(active_before, in_window + n) {
            let hold = Hold {
                // Not a sync run: the id names this hold (it is audited on release).
                run_id: RunId::new(now, rand::random()),
                at: now,
                would_deactivate: deactivate,
                would_delete: delete,
                active_before,
                sample: ids.iter().take(SAMPLE).map(|e| e.to_string()).collect(),
            };
            d.state = DirectoryState::Held;
            d.hold = Some(hold.clone());
            Decision::Held {
                new_hold: Some(hold),
            }
        } else {
            // Counted before they are applied: a failure after this answers 5xx and
            // BambooHR's retry counts the ones still to do again, which errs on the
            // side of holding.
            d.count_webhook_removals(now, n);
            Decision::Apply
        };
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => {
                match &decision {
                    Decision::Apply => {
                        info!(directory_id = %id, removals = n, in_window, active_before, "webhook deactivations within the safeguard")
                    }
                    Decision::Held { new_hold } => {
                        warn!(directory_id = %id, would_deactivate = deactivate, would_delete = delete, in_window, active_before, new_hold = new_hold.is_some(), "webhook deactivations held by the safeguard")
                    }
                }
                return Ok(decision);
            }
            Err(StoreError::Conflict { .. }) if attempt < 4 => {}
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}
