//! The incremental pass (employees changed since the cursor) and the targeted pass
//! (employees webhooks asked to refresh), both applied in batches.

use bamboohr_client::{ChangeAction, RawEmployee};
use domain::{EmployeeId, Hold, SyncRun, UserState};
use mapping::EmployeeRecord;
use ports::StoreError;
use time::OffsetDateTime;

use super::*;
use crate::error::EngineError;
use crate::reconcile::apply::{apply_record, context, mark_gone, write_if_changed};

/// The incremental pass: changed ids since the cursor, fetched in batches.
pub(super) async fn incremental(ctx: &Ctx<'_>, run: &mut SyncRun) -> Result<Finish, EngineError> {
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
    let finish = apply_batch(ctx, run, &rows, &deleted, 0).await?;
    if !refresh.is_empty() && matches!(finish, Finish::Completed) {
        engine.store.clear_refresh_requests(id, &refresh).await?;
    }
    Ok(finish)
}

/// The targeted pass: only the employees webhooks asked to refresh. What they ask
/// for are webhook changes, so their deactivations count against the safeguard
/// together with the other webhook removals of its window, and are counted in it.
pub(super) async fn targeted(ctx: &Ctx<'_>, run: &mut SyncRun) -> Result<Finish, EngineError> {
    let engine = ctx.engine;
    let id = &ctx.directory.id;
    let refresh = engine
        .store
        .pending_refresh_requests(id, REFRESH_BATCH)
        .await?;
    run.counts.store_reads += refresh.len() as u64;
    if refresh.is_empty() {
        return Ok(Finish::Completed);
    }
    let ids: Vec<String> = refresh.iter().map(|r| r.employee_id.to_string()).collect();
    let rows = ctx.fetch_by_ids(&ids, run).await?;
    let in_window = ctx.directory.webhook_removals_in_window(engine.clock.now());
    let removed_before = run.counts.deactivated + run.counts.deleted;
    let finish = apply_batch(ctx, run, &rows, &[], in_window).await?;
    if matches!(finish, Finish::Completed) {
        let removed = run.counts.deactivated + run.counts.deleted - removed_before;
        count_in_window(engine, id, removed).await?;
        engine.store.clear_refresh_requests(id, &refresh).await?;
    }
    Ok(finish)
}

/// Counts `n` applied webhook removals in the directory's safeguard window.
async fn count_in_window(
    engine: &crate::deps::Engine,
    id: &domain::DirectoryId,
    n: u64,
) -> Result<(), EngineError> {
    if n == 0 {
        return Ok(());
    }
    for attempt in 1..=4 {
        let Some(mut d) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        let expected = d.version;
        d.version += 1;
        d.count_webhook_removals(engine.clock.now(), n);
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. }) if attempt < 4 => {}
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// Applies fetched rows and deletions of an incremental run, deactivations and
/// deletions behind the safeguard; `already_removed` are removals counted before this
/// batch that the safeguard adds to its own (a targeted pass: the webhook window's).
async fn apply_batch(
    ctx: &Ctx<'_>,
    run: &mut SyncRun,
    rows: &[RawEmployee],
    deleted: &[EmployeeId],
    already_removed: u64,
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
        if ctx
            .directory
            .safeguard_trips(active_before, gone + already_removed)
        {
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
