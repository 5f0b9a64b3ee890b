//! `replay ...`: put dead letters back on the retry path, or re-send a directory's
//! (or one user's) current state to a target.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;
use sync_engine::operate;

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
            let n = operate::redrive(&stack.engine, max, under.as_ref(), &stack.actor).await?;
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
            let outcomes = operate::repush(&stack.engine, &id, &t, e.as_ref(), &stack.actor).await;
            progress.finish_and_clear();
            let outcomes = outcomes?;
            let delivered = outcomes
                .iter()
                .filter(|(_, o)| o.starts_with("Delivered"))
                .count();
            emit(out, mode, &outcomes, |o| {
                writeln!(
                    o,
                    "{} users re-pushed to {t}: {delivered} delivered, {} not (see `deliveries list`)",
                    outcomes.len(),
                    outcomes.len() - delivered
                )
            })
        }
    }
}
