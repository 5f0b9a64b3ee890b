//! The poller function: run by one EventBridge Scheduler schedule per directory (and by
//! one-time schedules that continue long runs), it syncs that directory from BambooHR;
//! a stack-level schedule also runs it as the stale-directory sweep.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use domain::{DirectoryId, RunStatus, SyncMode, SyncRequest, SyncRun};
use lambda_runtime::{Error, LambdaEvent};
use ports::Scheduler;
use serde::{Deserialize, Serialize};
use sync_engine::operate::retention::{purge_sweep, RevokedRetention};
use sync_engine::operate::{run_sync, stale_sweep};
use sync_engine::reconcile::run::RunOptions;
use sync_engine::{Engine, EngineError};

pub mod metrics;
use tokio::sync::OnceCell;

/// The poller function's configuration, read from its environment once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The stack's resources, audit table and metrics namespace.
    pub common: function_support::CommonSettings,
    /// How continuation and requested runs are scheduled.
    pub schedules: function_support::SchedulerSettings,
    /// REVOKED_RETENTION_DAYS (default 90).
    pub retention: RevokedRetention,
}

impl Settings {
    /// Reads every setting; a missing or invalid one names its variable.
    pub fn from_env() -> Result<Self, function_support::ConfigError> {
        Ok(Self {
            common: function_support::CommonSettings::from_env()?,
            schedules: function_support::SchedulerSettings::from_env()?,
            retention: function_support::revoked_retention_from_env()?,
        })
    }
}

/// How soon a paused full run continues in a fresh invocation.
pub const CONTINUE_AFTER: time::Duration = time::Duration::minutes(1);

/// Builds the scheduler from the invoked function's ARN (schedules target the poller
/// itself, whose ARN only the invocation knows).
pub type SchedulerFactory = Box<dyn Fn(&str) -> Option<Arc<dyn Scheduler>> + Send + Sync>;

/// What the poller needs, built once per process.
pub struct Poller {
    /// The engine.
    pub engine: Engine,
    factory: Option<SchedulerFactory>,
    scheduler: OnceCell<Option<Arc<dyn Scheduler>>>,
    retention: RevokedRetention,
}

impl Poller {
    /// A poller without a scheduler: a run that pauses at a checkpoint continues at the
    /// directory's next scheduled run.
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            factory: None,
            scheduler: OnceCell::new(),
            retention: RevokedRetention::default(),
        }
    }

    /// A poller that schedules the continuation of paused runs with `scheduler`.
    pub fn with_scheduler(engine: Engine, scheduler: Arc<dyn Scheduler>) -> Self {
        Self {
            engine,
            factory: None,
            scheduler: OnceCell::new_with(Some(Some(scheduler))),
            retention: RevokedRetention::default(),
        }
    }

    /// A poller whose scheduler is built at the first invocation from the invoked ARN.
    pub fn with_scheduler_factory(engine: Engine, factory: SchedulerFactory) -> Self {
        Self {
            engine,
            factory: Some(factory),
            scheduler: OnceCell::new(),
            retention: RevokedRetention::default(),
        }
    }

    /// Keeps revoked directories' history for `retention` before the sweep purges it
    /// (the default is [`RevokedRetention::DEFAULT_DAYS`]).
    pub fn with_revoked_retention(mut self, retention: RevokedRetention) -> Self {
        self.retention = retention;
        self
    }

    async fn scheduler(&self, invoked_arn: &str) -> Option<Arc<dyn Scheduler>> {
        self.scheduler
            .get_or_init(|| async { self.factory.as_ref().and_then(|make| make(invoked_arn)) })
            .await
            .clone()
    }
}

/// The payloads the poller accepts: a directory sync (from its schedule, a one-time
/// continuation or an operator), or the stack's stale sweep.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PollerRequest {
    /// `{"sweep": true}`.
    Sweep {
        /// Must be true.
        sweep: bool,
    },
    /// `{"directoryId": "...", "mode": "incremental|full|targeted"}`.
    Sync(SyncRequest),
}

/// What the invocation returns (also written to the function's log).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollerResponse {
    /// The directory synced (none for a sweep).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<DirectoryId>,
    /// The run's record (none for a sweep, or a directory gone or revoked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<SyncRun>,
    /// Directories the sweep found newly stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale: Vec<DirectoryId>,
    /// For a sweep: how many directories are stale now (newly or still), the gauge
    /// the stale alarm watches ([`metrics::sweep_metrics_emf`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_directories: Option<u64>,
    /// Revoked directories the sweep purged (their retention window had passed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purged: Vec<DirectoryId>,
}

fn parse(payload: serde_json::Value) -> Result<PollerRequest, String> {
    // serde reads a struct from a JSON array too (`["acme"]`); only the documented
    // object shapes are accepted, so a misconfigured schedule fails loudly.
    if !payload.is_object() {
        return Err("invalid poller payload: expected a JSON object".into());
    }
    // Untagged enums report "did not match any variant"; try each to name the problem.
    if payload.get("sweep").is_some() {
        return match payload.get("sweep") {
            Some(serde_json::Value::Bool(true))
                if payload.as_object().is_some_and(|o| o.len() == 1) =>
            {
                Ok(PollerRequest::Sweep { sweep: true })
            }
            _ => Err("invalid poller payload: a sweep is exactly {\"sweep\": true}".into()),
        };
    }
    serde_json::from_value::<SyncRequest>(payload)
        .map(PollerRequest::Sync)
        .map_err(|e| format!("invalid poller payload: {e}"))
}

/// The invocation's deadline as an `Instant` (Lambda gives milliseconds since the
/// epoch; 0 outside Lambda means none).
fn deadline(context: &lambda_runtime::Context) -> Option<Instant> {
    if context.deadline == 0 {
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Some(Instant::now() + Duration::from_millis(context.deadline.saturating_sub(now_ms)))
}

/// Runs one sync (or the stale sweep). A malformed payload, or a run that failed, fails
/// the invocation with a message naming the problem, so Scheduler's retry policy and
/// DLQ take over; a directory that is gone or revoked is logged and acknowledged (its
/// leftover schedules must not retry forever).
pub async fn handler(
    poller: &Poller,
    event: LambdaEvent<serde_json::Value>,
) -> Result<PollerResponse, Error> {
    let engine = &poller.engine;
    let request = parse(event.payload)?;
    let request = match request {
        PollerRequest::Sweep { .. } => {
            // Both halves run even when one fails, so a broken directory does not
            // stop the other; the invocation then fails and Scheduler retries it.
            let stale = stale_sweep(engine).await;
            let purged = purge_sweep(engine, poller.retention).await;
            let (stale, purged) = (stale?, purged?);
            tracing::info!(
                stale = stale.stale.len(),
                newly_stale = stale.newly_stale.len(),
                purged = purged.len(),
                retention_days = poller.retention.in_days(),
                "sweep finished"
            );
            return Ok(PollerResponse {
                directory_id: None,
                run: None,
                stale: stale.newly_stale,
                stale_directories: Some(stale.stale.len() as u64),
                purged: purged.into_iter().map(|p| p.directory_id).collect(),
            });
        }
        PollerRequest::Sync(r) => r,
    };
    tracing::info!(directory_id = %request.directory_id, mode = request.mode.as_str(), "sync starting");
    let options = RunOptions {
        deadline: deadline(&event.context),
        max_pages: None,
        page_size: None,
    };
    let run = match run_sync(engine, &request, &options).await {
        Ok(run) => run,
        Err(e @ (EngineError::DirectoryNotFound(_) | EngineError::DirectoryNotActive { .. })) => {
            tracing::warn!(directory_id = %request.directory_id, reason = %e, "sync request ignored");
            return Ok(PollerResponse {
                directory_id: Some(request.directory_id),
                run: None,
                stale: Vec::new(),
                stale_directories: None,
                purged: Vec::new(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    match run.status {
        RunStatus::Failed => {
            return Err(format!(
                "sync of directory {} failed: {}",
                request.directory_id,
                run.errors.join("; ")
            )
            .into())
        }
        RunStatus::Continued => {
            let next = SyncRequest {
                directory_id: request.directory_id.clone(),
                mode: SyncMode::Full,
            };
            match poller.scheduler(&event.context.invoked_function_arn).await {
                Some(s) => {
                    let at = engine.clock.now() + CONTINUE_AFTER;
                    if let Err(e) = s.schedule_once(&next, at).await {
                        // The checkpoint is saved; the next scheduled run continues it.
                        tracing::warn!(directory_id = %request.directory_id, reason = %e, "continuation not scheduled");
                    }
                }
                None => {
                    tracing::info!(directory_id = %request.directory_id, "no scheduler: the next scheduled run continues the checkpoint")
                }
            }
        }
        RunStatus::Completed => {
            // Due target reconciliations run after a completed run, in this
            // invocation's time; a failing one is logged and tried at the next run.
            if let Err(e) = sync_engine::operate::reconcile_due(engine, &request.directory_id).await
            {
                tracing::warn!(directory_id = %request.directory_id, reason = %e, "target reconciliations not run");
            }
        }
        _ => {}
    }
    Ok(PollerResponse {
        directory_id: Some(request.directory_id),
        run: Some(run),
        stale: Vec::new(),
        stale_directories: None,
        purged: Vec::new(),
    })
}
