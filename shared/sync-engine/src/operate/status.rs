//! A directory at a glance (state, last runs, per-target delivery health, evidence
//! freshness), and the sweep that marks directories stale.

use std::collections::BTreeMap;

use domain::{DirectoryId, DirectoryState, SyncRun};
use ports::{DeliveryQuery, StoreError};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tracing::warn;

use super::{directory, evidence_is_stale};
use crate::deps::Engine;
use crate::error::EngineError;

/// Per-target delivery health.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TargetHealth {
    /// The target.
    pub target_id: String,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Records by delivery status.
    pub by_status: BTreeMap<String, u64>,
    /// Whether its circuit breaker is open now.
    pub breaker_open: bool,
    /// Retrying, failed or dead-lettered deliveries, or an open breaker.
    pub failing: bool,
}

/// A directory at a glance.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The directory.
    pub directory_id: DirectoryId,
    /// Active, paused, held or revoked.
    pub state: DirectoryState,
    /// Last successful sync.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success: Option<OffsetDateTime>,
    /// Whether it is stale now.
    pub stale: bool,
    /// The hold, while held.
    pub hold: Option<domain::Hold>,
    /// The newest run.
    pub last_run: Option<SyncRun>,
    /// Users by state.
    pub users: BTreeMap<String, u64>,
    /// Delivery health per target.
    pub targets: Vec<TargetHealth>,
    /// Messages in the delivery dead-letter queue (shared by every directory), when
    /// the caller could read it.
    pub dead_letter_depth: Option<u64>,
    /// Whether the newest evidence row is older than the stale threshold (or missing).
    pub evidence_stale: bool,
}

/// The status of a directory. `dead_letter_depth` comes from the caller (the queue is
/// not a port of this engine).
pub async fn status(
    engine: &Engine,
    id: &DirectoryId,
    dead_letter_depth: Option<u64>,
) -> Result<Status, EngineError> {
    let d = directory(engine, id).await?;
    let now = engine.clock.now();
    let last_run = engine.store.list_runs(id, 1).await?.into_iter().next();
    let mut users = BTreeMap::new();
    for u in engine.store.user_fingerprints(id).await? {
        *users.entry(u.state.as_str().to_string()).or_insert(0) += 1;
    }
    let log = engine
        .store
        .list_deliveries(id, &DeliveryQuery::default())
        .await?;
    let mut targets = Vec::new();
    for t in &d.targets {
        let mut h = TargetHealth {
            target_id: t.id.to_string(),
            enabled: t.enabled,
            ..TargetHealth::default()
        };
        for r in log.iter().filter(|r| r.target_id == t.id) {
            *h.by_status
                .entry(r.status.as_str().to_string())
                .or_insert(0) += 1;
        }
        let breaker = engine.store.get_breaker(id, &t.id).await?;
        h.breaker_open = breaker.open_until.is_some_and(|u| u > now);
        h.failing = h.breaker_open
            || ["retrying", "failed", "dead_lettered"]
                .iter()
                .any(|s| h.by_status.get(*s).is_some_and(|n| *n > 0));
        targets.push(h);
    }
    let newest = engine.store.list_evidence(id, 1).await?.into_iter().next();
    Ok(Status {
        directory_id: id.clone(),
        state: d.state,
        last_success: d.last_success,
        stale: d.is_stale(now),
        hold: d.hold.clone(),
        last_run,
        users,
        targets,
        dead_letter_depth,
        evidence_stale: evidence_is_stale(&d, newest.as_ref(), now),
    })
}

/// What one stale sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaleSweep {
    /// Directories stale now, whether newly or for a while: the gauge the stale alarm
    /// watches, reported at every sweep so the alarm stays raised while any directory
    /// is stale and clears once none is.
    pub stale: Vec<DirectoryId>,
    /// Those that became stale since the last sweep (each got a `directory.stale`
    /// event).
    pub newly_stale: Vec<DirectoryId>,
}

/// Publishes `directory.stale` for every directory stale at `now` that has not had one
/// for its current stale period, and marks it; reports every directory stale now and
/// those newly stale.
pub async fn stale_sweep(engine: &Engine) -> Result<StaleSweep, EngineError> {
    let now = engine.clock.now();
    let mut report = StaleSweep::default();
    for d in engine.store.list_directories().await? {
        if !d.is_stale(now) {
            continue;
        }
        report.stale.push(d.id.clone());
        if d.stale_since.is_some() {
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
        let event = domain::ChangeEvent::new(
            domain::EventType::DirectoryStale,
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
        crate::reconcile::outbox::flush(engine, &d.id).await?;
        warn!(directory_id = %d.id, threshold_minutes = d.stale_threshold_minutes(), "directory is stale");
        report.newly_stale.push(d.id);
    }
    Ok(report)
}
