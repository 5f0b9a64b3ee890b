//! `audit ...`: a directory's audit log, newest entries first.

use std::io::Write;

use clap::Subcommand;

use super::args::dir_id;
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table, when};
use crate::stack::Stack;

/// `audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Newest entries first.
    List {
        /// Directory id (`_stack`: the stack-wide entries, such as the OAuth client's).
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs an `audit` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: AuditCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let AuditCmd::List { directory, limit } = cmd;
    let id = dir_id(&directory)?;
    let entries: Vec<ports::AuditEntry> = stack
        .client
        .first_page(&format!("/admin/directories/{id}/audit"), limit)
        .await?;
    emit(out, mode, &entries, |o| {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .map(|e| {
                vec![
                    when(Some(e.at)),
                    e.action.as_str().to_string(),
                    e.actor.clone(),
                    e.details.to_string(),
                ]
            })
            .collect();
        table(o, &["WHEN", "ACTION", "WHO", "DETAILS"], &rows)
    })
}
