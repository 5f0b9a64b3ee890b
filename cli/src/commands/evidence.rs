//! `evidence ...`: a directory's compliance evidence rows, newest first, each marked
//! stale or current.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use super::args::dir_id;
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table, when};
use crate::stack::Stack;

/// `evidence ...`
#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Newest rows first, each marked stale when older than the stale threshold.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Runs an `evidence` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: EvidenceCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let EvidenceCmd::List { directory, limit } = cmd;
    let id = dir_id(&directory)?;
    // Each row comes with `stale`: the newest is confirmed by every later sync that
    // found the same figures; older rows were superseded.
    let listed: Vec<serde_json::Value> = stack
        .client
        .first_page(&format!("/admin/directories/{id}/evidence"), limit)
        .await?;
    let rows: Vec<ports::EvidenceRow> = listed
        .iter()
        .map(|v| serde_json::from_value(v.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            crate::error::CliError::Usage(format!(
                "the admin API answered an unexpected shape: {e}"
            ))
        })?;
    emit(out, mode, &listed, |o| {
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .zip(&listed)
            .map(|(r, v)| {
                vec![
                    when(Some(r.captured_at)),
                    r.active_headcount.to_string(),
                    r.terminations_last_30_days.to_string(),
                    r.new_hires_last_30_days.to_string(),
                    r.target_share
                        .iter()
                        .map(|(t, s)| format!("{t}={:.0}%", s * 100.0))
                        .collect::<Vec<_>>()
                        .join(" "),
                    if v["stale"] == json!(true) {
                        "stale"
                    } else {
                        "current"
                    }
                    .into(),
                    r.fingerprint.chars().take(12).collect(),
                ]
            })
            .collect();
        table(
            o,
            &[
                "CAPTURED",
                "ACTIVE",
                "TERMINATED(30D)",
                "HIRED(30D)",
                "SYNCED TO",
                "",
                "FINGERPRINT",
            ],
            &table_rows,
        )
    })
}
