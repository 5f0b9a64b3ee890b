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
//! - **targeted**: the employees event-based webhooks asked to refresh.
//!
//! Every mode applies the day's date-driven transitions once per directory-local day,
//! holds mass deactivations for an operator (the safeguard), records a [`SyncRun`] and
//! publishes `directory.sync_completed|sync_failed|held`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration as StdDuration, Instant};

use bamboohr_client::{BambooClient, ChangeAction, RawEmployee};
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryState, EmployeeId, EventType, GroupId, Hold,
    MissingUserPolicy, RunId, RunStatus, SyncMode, SyncRequest, SyncRun, UserState,
};
use mapping::EmployeeRecord;
use ports::{StoreError, UserFingerprint};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::apply::{apply_record, context, mark_gone, write_if_changed, ApplyOutcome};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::full_sync::{bamboohr_client, mapping_config, requested_fields};
use crate::groups::GroupBook;
use crate::idset::IdSet;
use crate::lifecycle::{local_today, sweep};
use crate::outbox;

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

/// The saved progress of a full run, continued by the next full run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    run_id: RunId,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    /// The next datasets page to read.
    next_page: u32,
    page_size: u32,
    /// Employees listed so far.
    seen: IdSet,
    /// Employees whose deactivation waits for the safeguard's verdict.
    deferred: IdSet,
    /// Members counted per group so far.
    members: BTreeMap<GroupId, u64>,
    counts: domain::RunCounts,
    skipped: Vec<domain::SkippedRecord>,
}

/// Runs one sync of a directory and records it. A run that fails is recorded (status
/// `failed`, `directory.sync_failed` published) and returned as `Ok` with that status:
/// the caller decides whether a failure fails its invocation. `Err` means the run could
/// not even be recorded (unknown directory, store down).
pub async fn run_sync(
    engine: &Engine,
    request: &SyncRequest,
    options: &RunOptions,
) -> Result<SyncRun, EngineError> {
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
        return Ok(run);
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
        return Ok(run);
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
    // The audit entry and, for a completed run, the evidence snapshot.
    crate::admin::record_run(engine, &run, projection.as_deref()).await;
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
    Ok(run)
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
        (ApplyOutcome::Unchanged, _) => run.counts.unchanged += 1,
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

/// What the safeguard decides about a run's deactivations and deletions.
fn safeguard_trips(directory: &Directory, active_before: u64, gone: u64) -> bool {
    if directory.safeguard_released {
        return false;
    }
    let sg = &directory.safeguard;
    gone >= u64::from(sg.min_count) && (gone as f64) > sg.max_share * active_before as f64
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
        SyncMode::Full => full(&ctx, run, checkpoint, options)
            .await
            .map(|(finish, projection)| {
                unchanged_projection = projection;
                finish
            }),
        SyncMode::Incremental => incremental(&ctx, run).await,
        SyncMode::Targeted => targeted(&ctx, run).await.map(|()| Finish::Completed),
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

/// The full pass: pages from the checkpoint (or 1) to the end, then missing users and
/// the safeguard. A completed pass that changed no user also hands back the projection
/// it read, which is then still exact: the evidence snapshot reuses it instead of
/// reading every user's index entry a second time.
async fn full(
    ctx: &Ctx<'_>,
    run: &mut SyncRun,
    checkpoint: Option<Checkpoint>,
    options: &RunOptions,
) -> Result<(Finish, Option<Vec<UserFingerprint>>), EngineError> {
    let engine = ctx.engine;
    let id = &ctx.directory.id;
    let stored: HashMap<EmployeeId, UserFingerprint> = engine
        .store
        .user_fingerprints(id)
        .await?
        .into_iter()
        .map(|f| (f.employee_id.clone(), f))
        .collect();
    run.counts.store_reads += stored.len() as u64;
    let active_before = stored.values().filter(|f| is_live(f.state)).count() as u64;

    let mut cp = match checkpoint {
        Some(cp) => {
            info!(directory_id = %id, run_id = %cp.run_id, next_page = cp.next_page, "continuing a full sync from its checkpoint");
            // The continued run keeps the counts of the pages already done.
            let counts = std::mem::take(&mut run.counts);
            run.counts = cp.counts.clone();
            run.counts.store_reads += counts.store_reads;
            run.counts.events_published += counts.events_published;
            run.skipped = cp.skipped.clone();
            cp
        }
        None => Checkpoint {
            run_id: run.id.clone(),
            started_at: run.started_at,
            next_page: 1,
            page_size: options.page_size.unwrap_or(PAGE_SIZE).clamp(1, 1_000),
            seen: IdSet::new(),
            deferred: IdSet::new(),
            members: BTreeMap::new(),
            counts: Default::default(),
            skipped: Vec::new(),
        },
    };
    let fields = ctx.field_refs();
    let mut pages_this_invocation = 0;
    loop {
        let out_of_time = options
            .deadline
            .is_some_and(|d| d.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN);
        let page_budget_spent = options
            .max_pages
            .is_some_and(|m| pages_this_invocation >= m);
        if out_of_time || page_budget_spent {
            cp.counts = run.counts.clone();
            cp.skipped = run.skipped.clone();
            let text = serde_json::to_string(&cp).expect("a checkpoint serializes");
            engine.store.put_checkpoint(id, &text).await?;
            run.counts.store_writes += 1;
            info!(directory_id = %id, next_page = cp.next_page, "full sync paused at a checkpoint");
            return Ok((Finish::Continued, None));
        }
        let writes_before_page = run.counts.store_writes;
        let batch = ctx
            .client
            .dataset_page(&fields, cp.next_page, cp.page_size)
            .await?;
        pages_this_invocation += 1;
        run.counts.pages += 1;
        let now = engine.clock.now();
        let apply_ctx = context(&ctx.directory, now, None);
        for raw in &batch.employees {
            run.counts.seen += 1;
            let Some(record) = ctx.record(raw, run) else {
                cp.seen.insert(&raw.id);
                continue;
            };
            cp.seen.insert(record.employee_id.as_str());
            let candidate = mapping::apply(None, &record, &apply_ctx);
            for g in &candidate.group_ids {
                *cp.members.entry(g.clone()).or_default() += 1;
            }
            let stored_fp = stored.get(&record.employee_id);
            if stored_fp.is_some_and(|f| f.fingerprint == candidate.fingerprint) {
                run.counts.unchanged += 1;
                continue;
            }
            if stored_fp.is_some_and(|f| is_live(f.state)) && !is_live(candidate.state) {
                // Deactivations wait for the safeguard's verdict at the end.
                cp.deferred.insert(record.employee_id.as_str());
                continue;
            }
            ctx.apply(&record, run).await?;
        }
        // Publishing page by page keeps the outbox (and each read of it) small; a page
        // that wrote nothing left nothing to publish, so it costs no outbox read.
        if run.counts.store_writes > writes_before_page {
            let flushed = outbox::flush(engine, id).await?;
            run.counts.events_published += flushed.published as u64;
        }
        if cp.next_page >= batch.total_pages {
            break;
        }
        cp.next_page += 1;
        if batch.total_pages > 1 {
            cp.counts = run.counts.clone();
            cp.skipped = run.skipped.clone();
            let text = serde_json::to_string(&cp).expect("a checkpoint serializes");
            engine.store.put_checkpoint(id, &text).await?;
            run.counts.store_writes += 1;
        }
    }

    // The listing is complete: every page read without an error.
    let missing: Vec<EmployeeId> = stored
        .values()
        .filter(|f| f.state != UserState::Deleted && !cp.seen.contains(f.employee_id.as_str()))
        .map(|f| f.employee_id.clone())
        .collect();
    // A listing can shift while it is paged (someone deleted on page 1 moves the rest
    // up one row), so an employee is only "missing" if asking for it by id also fails.
    let missing_ids: Vec<String> = missing.iter().map(|e| e.to_string()).collect();
    let still_there = ctx.fetch_by_ids(&missing_ids, run).await?;
    let mut reappeared: Vec<EmployeeRecord> = Vec::new();
    for raw in &still_there {
        if let Some(r) = ctx.record(raw, run) {
            reappeared.push(r);
        }
    }
    let gone: Vec<EmployeeId> = missing
        .into_iter()
        .filter(|e| !still_there.iter().any(|r| r.id == e.as_str()))
        .collect();
    let gone_live = gone
        .iter()
        .filter(|e| stored.get(*e).is_some_and(|f| is_live(f.state)))
        .count() as u64;

    let deferred_total = cp.deferred.len() as u64 + gone_live;
    if safeguard_trips(&ctx.directory, active_before, deferred_total) {
        let sample: Vec<String> = cp
            .deferred
            .iter()
            .chain(gone.iter().map(|e| e.to_string()))
            .take(50)
            .collect();
        let (would_deactivate, would_delete) = match ctx.directory.missing_users {
            MissingUserPolicy::Delete => (cp.deferred.len() as u64, gone_live),
            MissingUserPolicy::Deactivate => (deferred_total, 0),
        };
        warn!(directory_id = %id, would_deactivate, would_delete, active_before, "safeguard tripped; run held");
        engine.store.clear_checkpoint(id).await?;
        let hold = Hold {
            run_id: run.id.clone(),
            at: engine.clock.now(),
            would_deactivate,
            would_delete,
            active_before,
            sample,
        };
        return Ok((Finish::Held(hold), None));
    }

    // Within bounds: apply the deferred deactivations with fresh data.
    let deferred_ids: Vec<String> = cp.deferred.iter().collect();
    let fresh = ctx.fetch_by_ids(&deferred_ids, run).await?;
    for raw in &fresh {
        if let Some(record) = ctx.record(raw, run) {
            run.counts.store_reads += 1;
            let outcome = apply_record(engine, &ctx.directory, &ctx.groups, &record, None).await?;
            // The fresh record's own mapping says what the user became: no second read.
            let state = mapping::apply(
                None,
                &record,
                &context(&ctx.directory, engine.clock.now(), None),
            )
            .state;
            count(run, outcome, Some(state).filter(|s| !is_live(*s)));
        }
    }
    for record in &reappeared {
        ctx.apply(record, run).await?;
    }
    let policy_state = match ctx.directory.missing_users {
        MissingUserPolicy::Delete => UserState::Deleted,
        MissingUserPolicy::Deactivate => UserState::Inactive,
    };
    for employee in &gone {
        run.counts.store_reads += 1;
        let outcome =
            mark_gone(engine, &ctx.directory, &ctx.groups, employee, policy_state).await?;
        count(run, outcome, Some(policy_state));
    }

    let changes = ctx
        .groups
        .reconcile(engine, &ctx.directory, &cp.members, engine.clock.now())
        .await?;
    run.counts.store_writes += changes.writes;
    engine.store.clear_checkpoint(id).await?;
    // Counts carried over from a checkpoint include earlier invocations' writes, so a
    // continued run that wrote anywhere hands back nothing and the snapshot re-reads.
    let c = &run.counts;
    let untouched = c.created + c.updated + c.deactivated + c.deleted == 0;
    Ok((
        Finish::Completed,
        untouched.then(|| stored.into_values().collect()),
    ))
}

/// The incremental pass: changed ids since the cursor, fetched in batches.
async fn incremental(ctx: &Ctx<'_>, run: &mut SyncRun) -> Result<Finish, EngineError> {
    let engine = ctx.engine;
    let id = &ctx.directory.id;
    let since = ctx
        .directory
        .cursors
        .changed_since
        .map(|c| c - CHANGED_OVERLAP)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let changed = ctx.client.changed_since(since).await?;
    run.counts.pages += 1;
    let mut fetch: Vec<String> = Vec::new();
    let mut deleted: Vec<EmployeeId> = Vec::new();
    for c in &changed {
        match c.action {
            ChangeAction::Deleted => match EmployeeId::parse(c.id.trim()) {
                Ok(e) => deleted.push(e),
                Err(_) => run.skip(&c.id, "not an employee id"),
            },
            ChangeAction::Inserted | ChangeAction::Updated => {
                if !fetch.contains(&c.id) {
                    fetch.push(c.id.clone());
                }
            }
        }
    }
    // Refresh requests from event-based webhooks ride along.
    let refresh = engine
        .store
        .pending_refresh_requests(id, REFRESH_BATCH)
        .await?;
    for r in &refresh {
        if !fetch.iter().any(|f| f == r.employee_id.as_str()) {
            fetch.push(r.employee_id.to_string());
        }
    }
    let rows = ctx.fetch_by_ids(&fetch, run).await?;
    let finish = apply_batch(ctx, run, &rows, &deleted).await?;
    if !refresh.is_empty() && matches!(finish, Finish::Completed) {
        engine.store.clear_refresh_requests(id, &refresh).await?;
    }
    Ok(finish)
}

/// The targeted pass: only the employees webhooks asked to refresh.
async fn targeted(ctx: &Ctx<'_>, run: &mut SyncRun) -> Result<(), EngineError> {
    let engine = ctx.engine;
    let id = &ctx.directory.id;
    let refresh = engine
        .store
        .pending_refresh_requests(id, REFRESH_BATCH)
        .await?;
    run.counts.store_reads += refresh.len() as u64;
    if refresh.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = refresh.iter().map(|r| r.employee_id.to_string()).collect();
    let rows = ctx.fetch_by_ids(&ids, run).await?;
    for raw in &rows {
        run.counts.seen += 1;
        if let Some(record) = ctx.record(raw, run) {
            ctx.apply(&record, run).await?;
        }
    }
    engine.store.clear_refresh_requests(id, &refresh).await?;
    Ok(())
}

/// Applies fetched rows and deletions of an incremental run, deactivations and
/// deletions behind the safeguard.
async fn apply_batch(
    ctx: &Ctx<'_>,
    run: &mut SyncRun,
    rows: &[RawEmployee],
    deleted: &[EmployeeId],
) -> Result<Finish, EngineError> {
    let engine = ctx.engine;
    let id = &ctx.directory.id;
    let mut deferred: Vec<(EmployeeRecord, domain::DirectoryUser)> = Vec::new();
    for raw in rows {
        run.counts.seen += 1;
        let Some(record) = ctx.record(raw, run) else {
            continue;
        };
        run.counts.store_reads += 1;
        let before = engine.store.get_user(id, &record.employee_id).await?;
        let now = engine.clock.now();
        let after = mapping::apply(
            before.as_ref(),
            &record,
            &context(&ctx.directory, now, None),
        );
        match &before {
            Some(b) if b.fingerprint == after.fingerprint => run.counts.unchanged += 1,
            Some(b) if is_live(b.state) && !is_live(after.state) => {
                deferred.push((record, b.clone()));
            }
            _ => {
                let outcome = match write_if_changed(
                    engine,
                    &ctx.directory,
                    &ctx.groups,
                    before.as_ref(),
                    after,
                    now,
                )
                .await
                {
                    Ok(o) => o,
                    // A concurrent writer: take the slow path with a fresh read.
                    Err(EngineError::Store(StoreError::Conflict { .. })) => {
                        apply_record(engine, &ctx.directory, &ctx.groups, &record, None).await?
                    }
                    Err(e) => return Err(e),
                };
                count(run, outcome, None);
            }
        }
    }
    let mut live_deleted = Vec::new();
    for e in deleted {
        run.counts.store_reads += 1;
        if let Some(u) = engine.store.get_user(id, e).await? {
            if is_live(u.state) {
                live_deleted.push(e.clone());
            } else if u.state != UserState::Deleted {
                let outcome =
                    mark_gone(engine, &ctx.directory, &ctx.groups, e, UserState::Deleted).await?;
                count(run, outcome, Some(UserState::Deleted));
            }
        }
    }
    let gone = (deferred.len() + live_deleted.len()) as u64;
    if gone > 0 {
        let active_before = engine
            .store
            .user_fingerprints(id)
            .await?
            .iter()
            .filter(|f| is_live(f.state))
            .count() as u64;
        if safeguard_trips(&ctx.directory, active_before, gone) {
            let sample = deferred
                .iter()
                .map(|(r, _)| r.employee_id.to_string())
                .chain(live_deleted.iter().map(|e| e.to_string()))
                .take(50)
                .collect();
            return Ok(Finish::Held(Hold {
                run_id: run.id.clone(),
                at: engine.clock.now(),
                would_deactivate: deferred.len() as u64,
                would_delete: live_deleted.len() as u64,
                active_before,
                sample,
            }));
        }
    }
    for (record, _) in &deferred {
        run.counts.store_reads += 1;
        let outcome = apply_record(engine, &ctx.directory, &ctx.groups, record, None).await?;
        count(run, outcome, Some(UserState::Inactive));
    }
    for e in &live_deleted {
        let outcome = mark_gone(engine, &ctx.directory, &ctx.groups, e, UserState::Deleted).await?;
        count(run, outcome, Some(UserState::Deleted));
    }
    Ok(Finish::Completed)
}

/// An operator's answer to a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDecision {
    /// Apply the held deactivations and deletions: the directory is active again and
    /// its next run is a full one that skips the safeguard once.
    Release,
    /// Drop them: the directory is active again and the next run decides afresh (and
    /// holds again if BambooHR still says the same).
    Discard,
}

/// Releases or discards a hold. Fails when the directory is not held.
pub async fn resolve_hold(
    engine: &Engine,
    id: &DirectoryId,
    decision: HoldDecision,
) -> Result<Directory, EngineError> {
    for attempt in 1..=4 {
        let Some(mut d) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        if d.state != DirectoryState::Held {
            return Err(EngineError::DirectoryNotActive {
                id: id.clone(),
                state: match d.state {
                    DirectoryState::Active => "active, not held",
                    DirectoryState::Paused => "paused, not held",
                    DirectoryState::Revoked => "revoked",
                    DirectoryState::Held => unreachable!("checked above"),
                },
            });
        }
        let expected = d.version;
        d.version += 1;
        d.state = DirectoryState::Active;
        d.hold = None;
        match decision {
            HoldDecision::Release => {
                d.safeguard_released = true;
                d.cursors.full_requested = true;
            }
            HoldDecision::Discard => d.safeguard_released = false,
        }
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => {
                info!(directory_id = %id, decision = ?decision, "hold resolved");
                return Ok(d);
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

/// Publishes `directory.stale` for every directory stale at `now` that has not had one
/// for its current stale period, and marks it. Returns the directories newly stale.
pub async fn stale_sweep(engine: &Engine) -> Result<Vec<DirectoryId>, EngineError> {
    let now = engine.clock.now();
    let mut newly = Vec::new();
    for d in engine.store.list_directories().await? {
        if !d.is_stale(now) || d.stale_since.is_some() {
            continue;
        }
        let mut next = d.clone();
        next.version += 1;
        next.stale_since = Some(now);
        match engine.store.put_directory(&next, Some(d.version)).await {
            Ok(()) => {}
            // A run finished meanwhile; the next sweep decides again.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
        let since = d.last_success.or(d.connected_at);
        let event = ChangeEvent::new(
            EventType::DirectoryStale,
            d.id.clone(),
            d.id.as_str(),
            u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
            now,
            json!({
                "lastSuccess": since.map(|t| t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
                "thresholdMinutes": d.stale_threshold_minutes(),
            }),
        );
        engine.store.append_events(&d.id, &[event]).await?;
        outbox::flush(engine, &d.id).await?;
        warn!(directory_id = %d.id, threshold_minutes = d.stale_threshold_minutes(), "directory is stale");
        newly.push(d.id);
    }
    Ok(newly)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_survives_its_round_trip_through_the_store() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut seen = IdSet::new();
        for id in ["1", "2", "3", "x-9"] {
            seen.insert(id);
        }
        let cp = Checkpoint {
            run_id: RunId::new(at, 7),
            started_at: at,
            next_page: 2,
            page_size: 10,
            seen,
            deferred: IdSet::new(),
            members: BTreeMap::from([(GroupId::parse("grp_1").unwrap(), 3)]),
            counts: domain::RunCounts::default(),
            skipped: vec![],
        };
        let text = serde_json::to_string(&cp).unwrap();
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(back.next_page, 2);
        assert_eq!(back.seen, cp.seen);
        assert_eq!(back.members, cp.members);
    }
}
