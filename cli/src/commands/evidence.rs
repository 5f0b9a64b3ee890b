//! `evidence ...`: a directory's compliance evidence rows, newest first, each marked
//! stale or current.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;
use sync_engine::operate;

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
    let d = operate::directory(&stack.engine, &id).await?;
    let rows = stack.engine.store.list_evidence(&id, limit).await?;
    let now = stack.engine.clock.now();
    let listed: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // The newest row is confirmed by every later sync that found the
            // same figures; older rows were superseded.
            let stale = if i == 0 {
                operate::evidence_is_stale(&d, Some(r), now)
            } else {
                true
            };
            let mut v = serde_json::to_value(r).expect("evidence serializes");
            v["stale"] = json!(stale);
            v
        })
        .collect();
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
