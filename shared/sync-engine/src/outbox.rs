//! The outbox: changes are written to the store together with their events, then
//! published. Whatever a crash or a bus failure left unpublished is published by the
//! next run of the same directory, and event ids are stable, so nothing is lost and a
//! re-publish is harmless.

use domain::DirectoryId;
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

/// What one flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    /// Events the bus accepted and the outbox released.
    pub published: usize,
    /// Events the bus refused; they stay in the outbox.
    pub failed: usize,
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
        for chunk in pending.chunks(FLUSH_PAGE) {
            let outcome = engine.bus.publish(chunk).await?;
            engine
                .store
                .mark_published(directory, &outcome.published)
                .await?;
            report.published += outcome.published.len();
            if !outcome.failed.is_empty() {
                report.failed += outcome.failed.len();
                for (id, reason) in &outcome.failed {
                    warn!(directory_id = %directory, event_id = %id, reason = %reason, "event not published; kept in the outbox");
                }
                break 'reading;
            }
        }
        if pending.len() < READ_PAGE {
            break;
        }
    }
    if report.published > 0 || report.failed > 0 {
        info!(directory_id = %directory, published = report.published, failed = report.failed, "outbox flushed");
    }
    Ok(report)
}
