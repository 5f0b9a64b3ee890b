//! The poller function: run by one EventBridge Scheduler schedule per directory (and on
//! demand), it syncs that directory from BambooHR.

use domain::DirectoryId;
use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use sync_engine::full_sync::{full_sync, SyncReport};
use sync_engine::Engine;

/// How much of the directory a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Every employee, reconciled against the store.
    #[default]
    Full,
    /// Employees changed since the cursor. Until the incremental reader lands, this
    /// runs a full reconciliation, which is a correct (if costlier) superset.
    Incremental,
}

/// The schedule's payload: which directory, which mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollerRequest {
    /// The directory to sync.
    pub directory_id: DirectoryId,
    /// Full or incremental.
    #[serde(default)]
    pub mode: SyncMode,
}

/// What the invocation returns (also written to the function's log).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollerResponse {
    /// The directory synced.
    pub directory_id: DirectoryId,
    /// The mode requested.
    pub mode: SyncMode,
    /// What the run did.
    pub report: SyncReport,
}

/// Runs one sync. A malformed payload or an unknown directory fails the invocation with
/// a message naming the problem; Scheduler's retry policy and DLQ take it from there.
pub async fn handler(
    engine: &Engine,
    event: LambdaEvent<serde_json::Value>,
) -> Result<PollerResponse, Error> {
    let request: PollerRequest = serde_json::from_value(event.payload)
        .map_err(|e| format!("invalid poller payload: {e}"))?;
    tracing::info!(directory_id = %request.directory_id, mode = ?request.mode, "sync starting");
    let report = full_sync(engine, &request.directory_id).await?;
    Ok(PollerResponse {
        directory_id: request.directory_id,
        mode: request.mode,
        report,
    })
}
