//! `runs ...`: a directory's sync runs, newest first, and one run in full.

use std::io::Write;

use clap::Subcommand;
use domain::RunId;

use super::args::{dir_id, usage};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table, when};
use crate::stack::Stack;

/// `runs ...`
#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// The newest runs.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run, with its skipped records and errors.
    Show {
        /// Directory id.
        directory: String,
        /// Run id.
        run: String,
    },
}

/// Runs a `runs` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: RunsCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        RunsCmd::List { directory, limit } => {
            let id = dir_id(&directory)?;
            let runs: Vec<domain::SyncRun> = stack
                .client
                .first_page(&format!("/admin/directories/{id}/runs"), limit)
                .await?;
            emit(out, mode, &runs, |o| {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.mode.as_str().into(),
                            format!("{:?}", r.status).to_lowercase(),
                            when(Some(r.started_at)),
                            r.counts.seen.to_string(),
                            (r.counts.created + r.counts.updated).to_string(),
                            r.counts.skipped.to_string(),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &[
                        "RUN", "MODE", "STATUS", "STARTED", "SEEN", "CHANGED", "SKIPPED",
                    ],
                    &rows,
                )
            })
        }
        RunsCmd::Show { directory, run } => {
            let id = dir_id(&directory)?;
            let run_id = RunId::parse(run.clone()).map_err(|e| usage(format!("run id: {e}")))?;
            let runs: Vec<domain::SyncRun> = stack
                .client
                .list(&format!("/admin/directories/{id}/runs"), &[])
                .await?;
            let r = runs
                .into_iter()
                .find(|r| r.id == run_id)
                .ok_or_else(|| usage(format!("no run {run} in {id}")))?;
            emit(out, mode, &r, |o| {
                let text = serde_json::to_string_pretty(&r).expect("a run serializes");
                writeln!(o, "{text}")
            })
        }
    }
}
