//! The outbox: changes are written to the store together with their events, then
//! published. Whatever a crash or a bus failure left unpublished is published by the
//! next run of the same directory, and event ids are stable, so nothing is lost and a
//! re-publish is harmless.
//!
//! An event the bus refuses for good (too large, malformed) is quarantined: stored aside
//! with the reason and logged as "event quarantined" (the stack's alarm counts those
//! lines), so it never blocks the directory's later events. A flush that leaves events
//! behind logs "outbox not drained" with the age of the oldest, which the stack's
//! outbox-age alarm watches.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::Future;

use domain::{ChangeEvent, DirectoryId, EventId};
use ports::QuarantinedEvent;
use time::Duration;
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;

/// Events published per bus call; EventBridge takes 10 per PutEvents and the adapter
/// batches, so this only bounds one call.
const FLUSH_PAGE: usize = 100;

/// Events read from the outbox at once. The store may read its whole outbox to find
/// the oldest events (DynamoDB orders them by `seq` in memory), so reading many at a
/// time keeps a large outbox from being read once per [`FLUSH_PAGE`]; runs flush after
/// every page of employees, so the outbox seldom holds more than a page's events.
const READ_PAGE: usize = 2_000;

/// How old an event left in the outbox must be before a webhook request publishes it
/// beside its own: younger ones belong to requests still in flight (the webhook
/// function's timeout is 29 s), which publish them themselves.
pub const SETTLED_AFTER: Duration = Duration::seconds(60);

/// What one request wrote and which objects it was about.
#[derive(Debug, Default)]
pub struct Written {
    /// Events the store accepted, in write order.
    pub events: Vec<ChangeEvent>,
    /// Ids of the objects the request applied something to, written or found
    /// unchanged (a retry of a delivery whose publish failed finds its user unchanged
    /// and must still publish that user's pending event).
    pub objects: HashSet<String>,
}

tokio::task_local! {
    /// What the store accepted while [`collecting`] runs.
    static WRITTEN: RefCell<Written>;
}

/// Runs `work`, collecting every event the store accepted during it (user and group
/// writes note theirs through [`note_written`]) and the objects it touched, so the
/// caller can publish exactly those instead of the directory's whole outbox.
pub async fn collecting<F: Future>(work: F) -> (F::Output, Written) {
    WRITTEN
        .scope(RefCell::new(Written::default()), async {
            let out = work.await;
            (out, WRITTEN.with(|w| w.take()))
        })
        .await
}

/// Notes events a store write has just accepted (a no-op outside [`collecting`]).
pub(crate) fn note_written(events: &[ChangeEvent]) {
    let _ = WRITTEN.try_with(|w| {
        let mut w = w.borrow_mut();
        w.objects.extend(events.iter().map(|e| e.object_id.clone()));
        w.events.extend_from_slice(events);
    });
}

/// Notes an object a request applied something to (a no-op outside [`collecting`]).
pub(crate) fn note_touched(object_id: String) {
    let _ = WRITTEN.try_with(|w| w.borrow_mut().objects.insert(object_id));
}

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// Events the bus accepted and the outbox released.
    pub published: usize,
    /// Events the bus refused for now; they stay in the outbox.
    pub failed: usize,
    /// Events the bus refused for good; set aside in the quarantine.
    pub quarantined: usize,
}

/// Publishes every pending event of a directory, oldest first. Stops at the first page
/// with a refused event, so later events of the same object are not published ahead
/// of earlier ones.
pub async fn flush(engine: &Engine, directory: &DirectoryId) -> Result<FlushReport, EngineError> {
    let mut report = FlushReport::default();
    'reading: loop {
        let pending = engine.store.pending_events(directory, READ_PAGE).await?;
        if pending.is_empty() {
            break;
        }
        if !publish_in_order(engine, directory, &pending, &mut report).await? {
            break 'reading;
        }
        if pending.len() < READ_PAGE {
            break;
        }
    }
    if report.published > 0 || report.failed > 0 || report.quarantined > 0 {
        info!(directory_id = %directory, published = report.published, failed = report.failed, quarantined = report.quarantined, "outbox flushed");
    }
    if report.failed > 0 {
        log_outbox_age(engine, directory).await;
    }
    Ok(report)
}

/// Logs the age of the directory's oldest unpublished event ("outbox not drained",
/// field `outbox_age_seconds`), for the outbox-age alarm. A store that cannot be read
/// here only costs the log line.
async fn log_outbox_age(engine: &Engine, directory: &DirectoryId) {
    if let Ok(oldest) = engine.store.pending_events(directory, 1).await {
        if let Some(e) = oldest.first() {
            let age = (engine.clock.now() - e.occurred_at).whole_seconds().max(0);
            warn!(directory_id = %directory, event_id = %e.id, outbox_age_seconds = age, "outbox not drained");
        }
    }
}

/// Publishes the events one request wrote (in write order), after pending events of
/// the objects it touched and any that have sat in the outbox for [`SETTLED_AFTER`]
/// (left by a crashed request or a refused publish; oldest first, so an object's older
/// event goes out before its newer one).
///
/// Concurrent webhook requests for one directory each publish their own events; a
/// whole-outbox flush per request made every request publish the others' pending
/// events too (measured: each event published about twice under 16 concurrent
/// deliveries), which costs a bus event, a queue message and a dispatcher pass each.
pub async fn publish_written(
    engine: &Engine,
    directory: &DirectoryId,
    written: Written,
) -> Result<FlushReport, EngineError> {
    let settled_before = engine.clock.now() - SETTLED_AFTER;
    let own = written.events;
    let own_ids: HashSet<&EventId> = own.iter().map(|e| &e.id).collect();
    let leftovers: Vec<ChangeEvent> = engine
        .store
        .pending_events(directory, READ_PAGE)
        .await?
        .into_iter()
        .filter(|e| !own_ids.contains(&e.id))
        .filter(|e| e.occurred_at <= settled_before || written.objects.contains(&e.object_id))
        .collect();
    let mut report = FlushReport::default();
    if publish_in_order(engine, directory, &leftovers, &mut report).await? {
        publish_in_order(engine, directory, &own, &mut report).await?;
    }
    if report.published > 0 || report.failed > 0 || report.quarantined > 0 {
        info!(directory_id = %directory, published = report.published, failed = report.failed, quarantined = report.quarantined, leftovers = leftovers.len(), "request's events published");
    }
    Ok(report)
}

/// Publishes `events` in order, [`FLUSH_PAGE`] a call, releasing what the bus accepted
/// from the outbox, quarantining what it rejected for good, and adding to `report`.
/// Stops after a call with an event refused for now, so later events of the same object
/// are not published ahead of earlier ones; false then.
async fn publish_in_order(
    engine: &Engine,
    directory: &DirectoryId,
    events: &[ChangeEvent],
    report: &mut FlushReport,
) -> Result<bool, EngineError> {
    for chunk in events.chunks(FLUSH_PAGE) {
        let outcome = engine.bus.publish(chunk).await?;
        engine
            .store
            .mark_published(directory, &outcome.published)
            .await?;
        report.published += outcome.published.len();
        if !outcome.rejected.is_empty() {
            quarantine(engine, directory, chunk, &outcome.rejected).await?;
            report.quarantined += outcome.rejected.len();
        }
        if !outcome.failed.is_empty() {
            report.failed += outcome.failed.len();
            for (id, reason) in &outcome.failed {
                warn!(directory_id = %directory, event_id = %id, reason = %reason, "event not published; kept in the outbox");
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Sets the rejected events of `chunk` aside, each with its reason, and logs each as
/// "event quarantined" (ids and reason only: the event holds HR data).
async fn quarantine(
    engine: &Engine,
    directory: &DirectoryId,
    chunk: &[ChangeEvent],
    rejected: &[(EventId, String)],
) -> Result<(), EngineError> {
    let now = engine.clock.now();
    let entries: Vec<QuarantinedEvent> = rejected
        .iter()
        .filter_map(|(id, reason)| {
            chunk
                .iter()
                .find(|e| &e.id == id)
                .map(|e| QuarantinedEvent {
                    event: e.clone(),
                    reason: reason.clone(),
                    quarantined_at: now,
                })
        })
        .collect();
    engine.store.quarantine_events(directory, &entries).await?;
    for q in &entries {
        warn!(directory_id = %directory, event_id = %q.event.id, object_id = %q.event.object_id, reason = %q.reason, "event quarantined");
    }
    Ok(())
}
