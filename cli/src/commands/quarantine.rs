//! `quarantine ...`: change events the change queue or the bus refused for good (too
//! large, malformed), set aside from a directory's outbox so its later events go on.
//! Shown as ids, sizes and reasons; the events themselves hold HR data.

use std::io::Write;

use clap::Subcommand;
use serde_json::Value;

use super::args::dir_id;
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table};
use crate::stack::Stack;

/// `quarantine ...`
#[derive(Debug, Subcommand)]
pub enum QuarantineCmd {
    /// A directory's quarantined events.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// Runs a `quarantine` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: QuarantineCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        QuarantineCmd::List { directory, limit } => {
            let id = dir_id(&directory)?;
            let items: Vec<Value> = stack
                .client
                .first_page(&format!("/admin/directories/{id}/quarantine"), limit)
                .await?;
            emit(out, mode, &items, |o| {
                let text = |v: &Value| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|q| {
                        vec![
                            text(&q["eventId"]),
                            text(&q["type"]),
                            text(&q["objectId"]),
                            text(&q["bytes"]),
                            text(&q["quarantinedAt"]),
                            text(&q["reason"]),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &["EVENT", "TYPE", "OBJECT", "BYTES", "QUARANTINED", "REASON"],
                    &rows,
                )
            })
        }
    }
}
