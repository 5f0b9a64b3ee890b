//! The full pass: every employee through datasets v2, page by page, diffed against
//! the fingerprint projection, with missing users confirmed gone and the safeguard
//! applied to what the pass would deactivate.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use domain::{EmployeeId, Hold, MissingUserPolicy, SyncRun, UserState};
use mapping::EmployeeRecord;
use ports::UserFingerprint;
use tracing::{info, warn};

use super::*;
use crate::error::EngineError;
use crate::reconcile::apply::{apply_record, context, mark_gone};
use crate::reconcile::idset::IdSet;
use crate::reconcile::outbox;

/// The full pass: pages from the checkpoint (or 1) to the end, then missing users and
/// the safeguard. A completed pass that changed no user also hands back the projection
/// it read, which is then still exact: the evidence snapshot reuses it instead of
/// reading every user's index entry a second time.
pub(super) async fn full(
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
    if ctx.directory.safeguard_trips(active_before, deferred_total) {
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
