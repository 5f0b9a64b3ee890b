//! One sync run of one directory, in any mode, under the directory's lease:
//!
//! - **incremental**: `employees/changed` since the cursor (minus an overlap for clock
//!   skew), then one batched datasets fetch per 100 changed ids; `Deleted` actions mark
//!   users deleted. Upgraded to a full run when one is due.
//! - **full**: every employee through datasets v2, page by page, diffed against the
//!   compact fingerprint projection (an unchanged employee costs no item read, no write
//!   and no event). Users missing from a listing known complete are confirmed gone by
//!   id and then deleted (or deactivated, by directory setting). Progress is saved after
//!   every page, so a killed or timed-out run continues where it stopped.
//! - **targeted**: the employees event-based webhooks asked to refresh. Their
//!   deactivations and deletions are webhook changes: counted with those of the
//!   safeguard's webhook window (`ingest::safeguard`), and held past it.
//!
//! Every mode applies the day's date-driven transitions once per directory-local day,
//! holds mass deactivations for an operator (the safeguard), records a [`SyncRun`] and
//! publishes `directory.sync_completed|sync_failed|held`.

use std::time::{Duration as StdDuration, Instant};

use bamboohr_client::{BambooClient, RawEmployee};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryState, EventType, Hold, RunId, RunStatus,
    SyncMode, SyncRequest, SyncRun, UserState,
};
use mapping::EmployeeRecord;
use ports::{StoreError, UserFingerprint};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::reconcile::apply::{apply_record, ApplyOutcome};
use crate::reconcile::groups::GroupBook;
use crate::reconcile::lifecycle::{local_today, sweep};
use crate::reconcile::outbox;
use crate::source::client::{bamboohr_client, mapping_config, requested_fields};

/// Rows per datasets page (the API allows up to 1000).
pub const PAGE_SIZE: u32 = 500;
/// Ids per batched fetch of changed employees.
pub const IDS_PER_FETCH: usize = 100;
/// How far before the cursor `employees/changed` is asked, for clock skew between
/// BambooHR and us; re-reading an unchanged employee costs a read, never a write.
pub const CHANGED_OVERLAP: Duration = Duration::minutes(5);
/// How long a run's lease lasts: past the Lambda limit (15 minutes), so a live run
/// never loses it, and a killed run's lease frees itself soon after.
pub const LEASE_FOR: Duration = Duration::minutes(16);
/// Refresh requests handled per run.
const REFRESH_BATCH: usize = 1_000;
/// Time kept in hand before the invocation's deadline to save a checkpoint and return.
const DEADLINE_MARGIN: StdDuration = StdDuration::from_secs(60);

/// How a run is bounded.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// When the invocation must have returned (Lambda's deadline). A full run stops
    /// a minute before it, saves its checkpoint and ends `continued`.
    pub deadline: Option<Instant>,
    /// Stop a full run after this many pages in this invocation (tests, and
    /// bounded runs by hand), as if the deadline had come.
    pub max_pages: Option<u32>,
    /// Rows per datasets page of a new full run (default [`PAGE_SIZE`]); a continued
    /// run keeps the size it started with, so its page numbers still line up.
    pub page_size: Option<u32>,
}

mod checkpoint;
mod full;
mod incremental;

use checkpoint::Checkpoint;

/// A finished run and what it leaves for its record.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run as stored.
    pub run: SyncRun,
    /// The fingerprint projection a completed full pass that changed nobody read, still
    /// exact: the evidence snapshot reuses it instead of reading it again.
    pub projection: Option<Vec<UserFingerprint>>,
}

/// Runs one sync of a directory. A run that fails is stored (status `failed`,
/// `directory.sync_failed` published) and returned as `Ok` with that status: the caller
/// decides whether a failure fails its invocation. `Err` means the run could not even
/// be stored (unknown directory, store down). Auditing the run and keeping evidence
/// are operations' business (`operate::run_sync` does both).
pub async fn sync_directory(
    engine: &Engine,
    request: &SyncRequest,
    options: &RunOptions,
) -> Result<Finished, EngineError> {
    let id = &request.directory_id;
    let started = engine.clock.now();
    let directory = engine
        .store
        .get_directory(id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(id.clone()))?;
    let run_id = RunId::new(started, rand::random());
    let mut run = SyncRun::start(run_id.clone(), id.clone(), request.mode, started);
    let not_now = match directory.state {
        DirectoryState::Active => None,
        DirectoryState::Paused => Some("directory is paused"),
        DirectoryState::Held => Some("directory is held by the safeguard"),
        DirectoryState::Revoked => {
            return Err(EngineError::DirectoryNotActive {
                id: id.clone(),
                state: "revoked",
            })
        }
    };
    if let Some(reason) = not_now {
        info!(directory_id = %id, reason, "sync skipped");
        run.status = RunStatus::Skipped;
        run.errors.push(reason.to_string());
        run.finished_at = Some(started);
        return Ok(Finished {
            run,
            projection: None,
        });
    }

    let holder = run_id.to_string();
    if !engine
        .store
        .acquire_lease(id, &holder, started, started + LEASE_FOR)
        .await?
    {
        info!(directory_id = %id, run_id = %run_id, reason = "another run holds the lease", "sync skipped");
        run.status = RunStatus::Skipped;
        run.errors
            .push("another run of this directory is in progress".to_string());
        run.finished_at = Some(started);
        engine.store.put_run(&run).await?;
        return Ok(Finished {
            run,
            projection: None,
        });
    }
    engine.store.put_run(&run).await?;

    let outcome = run_locked(engine, directory, &mut run, options).await;
    let finished = engine.clock.now();
    run.finished_at = Some(finished);
    let mut projection = None;
    match outcome {
        Ok(unchanged) => projection = unchanged,
        Err(e) => {
            warn!(directory_id = %id, run_id = %run_id, retryable = e.is_retryable(), reason = %e, "sync failed");
            run.status = RunStatus::Failed;
            run.errors.push(e.to_string());
            let event = directory_event(
                EventType::DirectorySyncFailed,
                id,
                &run,
                json!({"runId": run.id, "mode": run.mode, "error": e.to_string()}),
            );
            if let Err(e) = engine.store.append_events(id, &[event]).await {
                warn!(directory_id = %id, reason = %e, "sync_failed event not stored");
            }
            let _ = outbox::flush(engine, id).await;
        }
    }
    let put = engine.store.put_run(&run).await;
    let released = engine.store.release_lease(id, &holder).await;
    put?;
    released?;
    info!(
        directory_id = %id,
        run_id = %run.id,
        mode = run.mode.as_str(),
        status = ?run.status,
        pages = run.counts.pages,
        bamboohr_requests = run.counts.bamboohr_requests,
        seen = run.counts.seen,
        created = run.counts.created,
        updated = run.counts.updated,
        deactivated = run.counts.deactivated,
        deleted = run.counts.deleted,
        unchanged = run.counts.unchanged,
        skipped = run.counts.skipped,
        events_published = run.counts.events_published,
        "sync finished"
    );
    Ok(Finished { run, projection })
}

/// The event a directory-level fact causes; its version is the run's start in
/// milliseconds, so each run's event has its own stable id.
fn directory_event(
    event_type: EventType,
    id: &DirectoryId,
    run: &SyncRun,
    data: serde_json::Value,
) -> ChangeEvent {
    let version = u64::try_from(run.started_at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    ChangeEvent::new(
        event_type,
        id.clone(),
        id.as_str(),
        version,
        run.started_at,
        data,
    )
}

/// Whether a full run is due instead of an incremental one.
fn full_due(directory: &Directory, has_checkpoint: bool, now: OffsetDateTime) -> bool {
    has_checkpoint
        || directory.cursors.full_requested
        || directory.safeguard_released
        || directory.cursors.changed_since.is_none()
        || directory.cursors.last_full_sync.is_none_or(|last| {
            now - last >= Duration::hours(i64::from(directory.schedule.full_every_hours.max(1)))
        })
}

/// Everything a run step needs.
struct Ctx<'a> {
    engine: &'a Engine,
    directory: Directory,
    client: BambooClient,
    groups: GroupBook,
    fields: Vec<String>,
}

impl Ctx<'_> {
    fn field_refs(&self) -> Vec<&str> {
        self.fields.iter().map(String::as_str).collect()
    }

    /// Maps a BambooHR row; a row that cannot be mapped is skipped with its reason.
    fn record(&self, raw: &RawEmployee, run: &mut SyncRun) -> Option<EmployeeRecord> {
        match mapping::record_from_fields(
            &raw.id,
            &raw.fields,
            &raw.restricted,
            &mapping_config(&self.directory),
        ) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(directory_id = %self.directory.id, employee_id = %raw.id, reason = %e, "employee skipped");
                run.skip(&raw.id, e.to_string());
                None
            }
        }
    }

    /// The given employees with the sync's fields, one datasets request per
    /// [`IDS_PER_FETCH`] ids (`employeeId in (...)`).
    async fn fetch_by_ids(
        &self,
        ids: &[String],
        run: &mut SyncRun,
    ) -> Result<Vec<RawEmployee>, EngineError> {
        let fields = self.field_refs();
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(IDS_PER_FETCH) {
            let quoted: Vec<String> = batch
                .iter()
                .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric()))
                .map(|id| format!("'{id}'"))
                .collect();
            if quoted.is_empty() {
                continue;
            }
            let filter = format!("employeeId in ({})", quoted.join(","));
            let size = u32::try_from(IDS_PER_FETCH).unwrap_or(100);
            let mut page = 1;
            loop {
                let got = self
                    .client
                    .dataset_page_filtered(&fields, &filter, page, size)
                    .await?;
                run.counts.pages += 1;
                out.extend(got.employees);
                if page >= got.total_pages {
                    break;
                }
                page += 1;
            }
        }
        Ok(out)
    }

    /// Applies one record through the read-merge-write path, counting the outcome.
    async fn apply(&self, record: &EmployeeRecord, run: &mut SyncRun) -> Result<(), EngineError> {
        run.counts.store_reads += 1;
        let outcome =
            apply_record(self.engine, &self.directory, &self.groups, record, None).await?;
        count(run, outcome, None);
        Ok(())
    }
}

/// Counts an applied change; `became` is the new state when it is a deactivation or
/// deletion.
fn count(run: &mut SyncRun, outcome: ApplyOutcome, became: Option<UserState>) {
    match (outcome, became) {
        // A run passes no entry timestamp, so nothing it applies is stale.
        (ApplyOutcome::Unchanged | ApplyOutcome::Stale, _) => run.counts.unchanged += 1,
        (ApplyOutcome::Created, _) => {
            run.counts.created += 1;
            run.counts.store_writes += 1;
        }
        (ApplyOutcome::Updated, Some(UserState::Deleted)) => {
            run.counts.deleted += 1;
            run.counts.store_writes += 1;
        }
        (ApplyOutcome::Updated, Some(UserState::Inactive)) => {
            run.counts.deactivated += 1;
            run.counts.store_writes += 1;
        }
        (ApplyOutcome::Updated, _) => {
            run.counts.updated += 1;
            run.counts.store_writes += 1;
        }
    }
}

fn is_live(state: UserState) -> bool {
    matches!(state, UserState::Active | UserState::Pending)
}

async fn run_locked(
    engine: &Engine,
    directory: Directory,
    run: &mut SyncRun,
    options: &RunOptions,
) -> Result<Option<Vec<UserFingerprint>>, EngineError> {
    let id = directory.id.clone();
    let leftovers = outbox::flush(engine, &id).await?;
    run.counts.events_published += leftovers.published as u64;

    let client = bamboohr_client(engine, &directory).await?;
    let checkpoint = match engine.store.get_checkpoint(&id).await? {
        Some(text) => match serde_json::from_str::<Checkpoint>(&text) {
            Ok(cp) => Some(cp),
            Err(e) => {
                warn!(directory_id = %id, reason = %e, "unreadable checkpoint dropped; starting over");
                engine.store.clear_checkpoint(&id).await?;
                None
            }
        },
        None => None,
    };
    let now = engine.clock.now();
    if run.mode == SyncMode::Incremental && full_due(&directory, checkpoint.is_some(), now) {
        run.mode = SyncMode::Full;
    }
    let ctx = Ctx {
        engine,
        fields: requested_fields(&directory),
        groups: GroupBook::new(&directory),
        directory,
        client,
    };
    let before = ctx.client.stats();
    let mut unchanged_projection = None;
    let result = match run.mode {
        SyncMode::Full => {
            full::full(&ctx, run, checkpoint, options)
                .await
                .map(|(finish, projection)| {
                    unchanged_projection = projection;
                    finish
                })
        }
        SyncMode::Incremental => incremental::incremental(&ctx, run).await,
        SyncMode::Targeted => incremental::targeted(&ctx, run).await,
    };
    let after = ctx.client.stats();
    run.counts.bamboohr_requests += after.requests - before.requests;
    run.counts.bamboohr_throttles += after.throttles - before.throttles;
    let finish = result?;

    // Date-driven transitions, once per directory-local day (a full run re-derived
    // every listed user already).
    let today = local_today(&ctx.directory, engine.clock.now());
    let mut swept = false;
    if matches!(finish, Finish::Completed)
        && ctx.directory.cursors.lifecycle_checked_on != Some(today)
    {
        if run.mode != SyncMode::Full {
            let s = sweep(engine, &ctx.directory, &ctx.groups, today).await?;
            run.counts.store_reads += s.projection_reads + s.user_reads;
            run.counts.store_writes += s.changed;
            run.counts.deactivated += s.deactivated;
            run.counts.updated += s.changed - s.deactivated;
        }
        swept = true;
    }

    let flushed = outbox::flush(engine, &id).await?;
    run.counts.events_published += flushed.published as u64;
    finish_directory(engine, &ctx.directory, run, finish, swept.then_some(today)).await?;
    let flushed = outbox::flush(engine, &id).await?;
    run.counts.events_published += flushed.published as u64;
    Ok(unchanged_projection)
}

/// How a mode's pass ended.
enum Finish {
    /// Everything applied; `changed_since` is the cursor for the next incremental run.
    Completed,
    /// A full run stopped early; its checkpoint continues it.
    Continued,
    /// The safeguard held the run.
    Held(Hold),
}

/// Records the run's end on the directory (cursors, last success, hold) and queues the
/// directory event.
async fn finish_directory(
    engine: &Engine,
    directory: &Directory,
    run: &mut SyncRun,
    finish: Finish,
    lifecycle_checked_on: Option<time::Date>,
) -> Result<(), EngineError> {
    let id = &directory.id;
    let now = engine.clock.now();
    let (status, event) = match &finish {
        Finish::Completed => (
            RunStatus::Completed,
            Some(directory_event(
                EventType::DirectorySyncCompleted,
                id,
                run,
                json!({"runId": run.id, "mode": run.mode, "counts": run.counts}),
            )),
        ),
        Finish::Continued => (RunStatus::Continued, None),
        Finish::Held(hold) => (
            RunStatus::Held,
            Some(directory_event(
                EventType::DirectoryHeld,
                id,
                run,
                serde_json::to_value(hold).expect("a hold serializes"),
            )),
        ),
    };
    for attempt in 1..=4 {
        let Some(mut d) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        let expected = d.version;
        d.version += 1;
        match &finish {
            Finish::Completed => {
                d.last_success = Some(now);
                d.stale_since = None;
                if run.mode != SyncMode::Targeted {
                    // The run saw everything changed before it started.
                    d.cursors.changed_since = Some(run.started_at);
                }
                if run.mode == SyncMode::Full {
                    d.cursors.last_full_sync = Some(now);
                    d.cursors.full_requested = false;
                    d.safeguard_released = false;
                }
                if let Some(day) = lifecycle_checked_on {
                    d.cursors.lifecycle_checked_on = Some(day);
                }
            }
            Finish::Continued => {}
            Finish::Held(hold) => {
                d.state = DirectoryState::Held;
                d.hold = Some(hold.clone());
            }
        }
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => break,
            Err(StoreError::Conflict { .. }) if attempt < 4 => continue,
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    run.counts.store_writes += 1;
    run.status = status;
    if let Some(event) = event {
        engine.store.append_events(id, &[event]).await?;
    }
    Ok(())
}
