//! `sync`: run one directory's sync now, in this process, and report the run.

use std::io::Write;

use clap::Args;
use domain::{SyncMode, SyncRequest};
use sync_engine::reconcile::run::RunOptions;

use super::args::{dir_id, usage};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, spinner};
use crate::stack::Stack;

/// `sync`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Directory id.
    pub directory: String,
    /// A full reconciliation instead of an incremental run.
    #[arg(long)]
    pub full: bool,
}

/// Runs `sync`.
pub(super) async fn run(
    stack: &Stack,
    a: SyncArgs,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let id = dir_id(&a.directory)?;
    let request = SyncRequest {
        directory_id: id.clone(),
        mode: if a.full {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        },
    };
    let Some(engine) = &stack.local_engine else {
        // A deployed stack's poller runs it (within a minute); the answer says when.
        let r = stack
            .client
            .post(
                &format!("/admin/directories/{id}/sync"),
                &serde_json::json!({"mode": request.mode.as_str()}),
            )
            .await?;
        return emit(out, mode, &r, |o| {
            writeln!(
                o,
                "{id}: {} sync requested; the poller runs it shortly (see `runs list`)",
                request.mode.as_str()
            )
        });
    };
    // Locally the run happens here, at once (the store is shared with a running `dev`).
    let progress = spinner(mode, format!("syncing {id} ({})", request.mode.as_str()));
    let run = sync_engine::operate::run_sync(engine, &request, &RunOptions::default()).await;
    progress.finish_and_clear();
    let run = run?;
    emit(out, mode, &run, |o| {
        let c = &run.counts;
        writeln!(
            o,
            "run {} {:?} ({}): {} seen, {} created, {} updated, {} deactivated, {} deleted, {} unchanged, {} skipped",
            run.id, run.status, run.mode.as_str(), c.seen, c.created, c.updated, c.deactivated, c.deleted, c.unchanged, c.skipped
        )?;
        for e in &run.errors {
            writeln!(o, "  error: {e}")?;
        }
        Ok(())
    })?;
    if run.status == domain::RunStatus::Failed {
        return Err(usage(format!(
            "sync of {id} failed: {}",
            run.errors.join("; ")
        )));
    }
    Ok(())
}
