//! The outbox: changes are written to the store together with their events, then
//! published. Whatever a crash or a bus failure left unpublished is published by the
//! next run of the same directory, and event ids are stable, so nothing is lost and a
//! re-publish is harmless.

use domain::DirectoryId;
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;

/// Events published per bus call; EventBridge takes 10 per PutEvents and the adapter
/// batches, so this only bounds memory.
const FLUSH_PAGE: usize = 100;

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
    loop {
        let pending = engine.store.pending_events(directory, FLUSH_PAGE).await?;
        if pending.is_empty() {
            break;
        }
        let outcome = engine.bus.publish(&pending).await?;
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
            break;
        }
        if pending.len() < FLUSH_PAGE {
            break;
        }
    }
    if report.published > 0 || report.failed > 0 {
        info!(directory_id = %directory, published = report.published, failed = report.failed, "outbox flushed");
    }
    Ok(report)
}
