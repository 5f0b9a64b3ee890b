//! Operating the sync: the services the admin API, the CLI and the poller's
//! housekeeping call. Connect a directory (credentials checked against BambooHR
//! first), change its settings, pause, resume or revoke it, manage and test its
//! targets, report its status, resolve holds, re-push and re-drive deliveries,
//! request and record runs, keep evidence, purge revoked directories, and create and
//! check the setup links a customer's IT admin connects with.
//!
//! Every service writes an audit entry naming who acted; entries never carry a secret
//! or an HR field value. This is the top of the engine: it calls into source,
//! reconcile and deliver, and nothing there calls back up here.

use domain::{Directory, DirectoryId};
use ports::StoreError;

use crate::deps::Engine;
use crate::error::EngineError;

pub mod audit;
pub mod connect;
pub mod evidence;
pub mod holds;
pub mod keys;
pub mod oauth_client;
pub mod onboarding;
pub mod reconcile;
pub mod redrive;
pub mod retention;
pub mod runs;
pub mod schedule;
pub mod settings;
pub mod setup_links;
pub mod state;
pub mod status;
pub mod targets;
pub mod webhook;

pub use audit::audit;
pub use connect::{connect, ConnectOutcome, ConnectRequest, Credential};
pub use evidence::{evidence_is_stale, evidence_snapshot};
pub use holds::{resolve_hold, HoldDecision};
pub use oauth_client::{
    oauth_client, oauth_client_view, remove_oauth_client, set_oauth_client, OAuthClient,
    OAuthClientView,
};
pub use reconcile::{reconcile_due, request_reconcile, ReconcileRequested};
pub use redrive::{queue_repush, redrive, repush};
pub use runs::{record_run, request_sync, run_sync, SyncRequested, REQUESTED_SYNC_AFTER};
pub use settings::{update_settings, Changed, SettingsChange, SettingsPreset, SettingsUpdated};
pub use setup_links::{
    create_setup_link, list_setup_links, revoke_setup_link, CreatedSetupLink, NewSetupLink,
    SetupLinkProblem, SetupLinkView,
};
pub use state::{pause, resume, revoke};
pub use status::{stale_sweep, status, StaleSweep, Status, TargetHealth};
pub use targets::{
    add_target, remove_target, test_target, update_target, TargetSpec, TargetTest, TargetsChanged,
};
pub use webhook::{register_webhook, MonitorFields, WebhookRegistration};

/// The actor recorded for the poller's own entries (runs, holds).
pub const POLLER_ACTOR: &str = "function:poller";

pub(crate) fn invalid(what: &str, reason: impl Into<String>) -> EngineError {
    EngineError::InvalidInput {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// Reads a directory or fails with `DirectoryNotFound`.
pub async fn directory(engine: &Engine, id: &DirectoryId) -> Result<Directory, EngineError> {
    engine
        .store
        .get_directory(id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(id.clone()))
}

/// Read-modify-write of a directory, retried on conflicting writers. `change` returns
/// false to leave the directory as it is.
pub(crate) async fn modify<F>(
    engine: &Engine,
    id: &DirectoryId,
    mut change: F,
) -> Result<Directory, EngineError>
where
    F: FnMut(&mut Directory) -> Result<bool, EngineError>,
{
    for attempt in 1..=4 {
        let mut d = directory(engine, id).await?;
        let expected = d.version;
        if !change(&mut d)? {
            return Ok(d);
        }
        d.version = expected + 1;
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => return Ok(d),
            Err(StoreError::Conflict { .. }) if attempt < 4 => continue,
            Err(StoreError::Conflict { what, .. }) => {
                return Err(EngineError::TooManyConflicts { what, attempts: 4 })
            }
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}
