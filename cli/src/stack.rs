//! Which stack a command operates: the local one (the `dev` data directory: the
//! embedded file store and local secrets file).
//!
//! Locally, schedules live in the running `dev` process, which rebuilds them from the
//! directory records at every tick; a command's own scheduler is therefore a scratch
//! one, and the directory record (state, schedule settings) is what takes effect.

use std::path::Path;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use domain::ChangeEvent;
use embedded_adapters::{FileSecrets, FileStore, InProcessScheduler};
use ports::{BusError, EventBus, PublishOutcome, Scheduler, SecretStore, Store, SystemClock};
use sync_engine::Engine;

use crate::commands::CliError;

/// The engine and scheduler a command runs against, and who the caller is.
pub struct Stack {
    /// The engine over the stack's store, secrets and bus.
    pub engine: Engine,
    /// Where directory schedules go.
    pub scheduler: Arc<dyn Scheduler>,
    /// The caller's identity, for the audit log.
    pub actor: String,
}

/// The local bus of a one-shot command: the dispatcher runs in `dev`, not here, so
/// every event is refused and stays in the outbox, which the next `dev` run publishes
/// (outbox guarantee: nothing is lost, nothing is delivered twice).
struct DeferredBus;

// Written out as `async_trait` expands it, so the CLI needs no macro dependency.
impl EventBus for DeferredBus {
    fn publish<'a, 'b, 'c>(
        &'a self,
        events: &'b [ChangeEvent],
    ) -> Pin<Box<dyn Future<Output = Result<PublishOutcome, BusError>> + Send + 'c>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        let failed = events
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    "kept for the dev stack's dispatcher".to_string(),
                )
            })
            .collect();
        Box::pin(async move {
            Ok(PublishOutcome {
                published: Vec::new(),
                failed,
            })
        })
    }
}

/// The file `dev` holds while it runs (its process id).
pub const DEV_PID_FILE: &str = "dev.pid";

/// Refuses to open the local store while a `dev` process has it: the file store is
/// one process's, and two writers would lose each other's changes.
fn ensure_dev_not_running(data_dir: &Path) -> Result<(), CliError> {
    let Ok(text) = std::fs::read_to_string(data_dir.join(DEV_PID_FILE)) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return Ok(());
    };
    let alive = Path::new("/proc").join(pid.to_string()).exists();
    if alive && pid != std::process::id() {
        return Err(CliError::Usage(format!(
            "the dev stack (pid {pid}) is using {}; stop it first (Ctrl-C), then run this command",
            data_dir.display()
        )));
    }
    Ok(())
}

impl Stack {
    /// The local stack under `data_dir`.
    pub async fn local(data_dir: &Path) -> Result<Self, CliError> {
        ensure_dev_not_running(data_dir)?;
        let store: Arc<dyn Store> = Arc::new(FileStore::open(data_dir.join("store.json")).await?);
        let secrets: Arc<dyn SecretStore> =
            Arc::new(FileSecrets::open(data_dir.join("secrets.json")));
        let engine = Engine::new(store, secrets, Arc::new(DeferredBus), Arc::new(SystemClock));
        Ok(Self {
            engine,
            scheduler: Arc::new(InProcessScheduler::new()),
            actor: local_actor(),
        })
    }
}

/// `local:<user>` from the environment of the operator's shell.
fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("local:{user}")
}
