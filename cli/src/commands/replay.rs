//! `replay ...`: put dead letters back on the retry path, or re-send a directory's
//! (or one user's) current state to a target.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use super::args::{dir_id, employee_id, target_id};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, spinner};
use crate::stack::Stack;

/// `replay ...`
#[derive(Debug, Subcommand)]
pub enum ReplayCmd {
    /// Put dead letters back on the retry path.
    DeadLetters {
        /// Directory the re-drive is audited under.
        #[arg(long)]
        directory: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
    /// Re-send the current state of a directory (or one user) to a target.
    Push {
        /// Directory id.
        directory: String,
        /// Target id.
        #[arg(long)]
        target: String,
        /// Only this BambooHR employee.
        #[arg(long)]
        employee: Option<String>,
    },
}

/// Runs a `replay` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: ReplayCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        ReplayCmd::DeadLetters { directory, max } => {
            let under = directory.as_deref().map(dir_id).transpose()?;
            let r = stack
                .client
                .post(
                    "/admin/dead-letters/redrive",
                    &json!({"max": max, "directoryId": under}),
                )
                .await?;
            let n = r["redriven"].as_u64().unwrap_or_default();
            emit(out, mode, &json!({"redriven": n}), |o| {
                writeln!(o, "{n} dead letters put back on the retry path")
            })
        }
        ReplayCmd::Push {
            directory,
            target,
            employee,
        } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let e = employee.as_deref().map(employee_id).transpose()?;
            let progress = spinner(mode, format!("re-pushing {id} to {t}"));
            let r = stack
                .client
                .post(
                    &format!("/admin/directories/{id}/replay"),
                    &json!({"target": t, "employeeId": e}),
                )
                .await;
            progress.finish_and_clear();
            let r = r?;
            if let Some(queued) = r["queued"].as_u64() {
                return emit(out, mode, &r, |o| {
                    writeln!(
                        o,
                        "{queued} users queued for re-push to {t}; the dispatcher delivers them (see `deliveries list`)"
                    )
                });
            }
            let users = r["users"].as_u64().unwrap_or_default();
            let delivered = r["delivered"].as_u64().unwrap_or_default();
            emit(out, mode, &r, |o| {
                writeln!(
                    o,
                    "{users} users re-pushed to {t}: {delivered} delivered, {} not (see `deliveries list`)",
                    users - delivered
                )
            })
        }
    }
}
