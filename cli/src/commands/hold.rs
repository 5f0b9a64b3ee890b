//! `hold ...`: release or discard what the safeguard held back from a run.

use std::io::Write;

use clap::Subcommand;
use sync_engine::operate::HoldDecision;

use super::args::{dir_id, state_name};
use crate::error::CliError;
use crate::output::emit;
use crate::output::Output;
use crate::stack::Stack;

/// `hold ...`
#[derive(Debug, Subcommand)]
pub enum HoldCmd {
    /// Apply what the safeguard held: the next run is a full one without it, once.
    Release {
        /// Directory id.
        directory: String,
    },
    /// Drop it: the next run decides afresh.
    Discard {
        /// Directory id.
        directory: String,
    },
}

/// Runs a `hold` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: HoldCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (directory, decision) = match cmd {
        HoldCmd::Release { directory } => (directory, HoldDecision::Release),
        HoldCmd::Discard { directory } => (directory, HoldDecision::Discard),
    };
    let id = dir_id(&directory)?;
    let path = match decision {
        HoldDecision::Release => format!("/admin/directories/{id}/hold/release"),
        HoldDecision::Discard => format!("/admin/directories/{id}/hold/discard"),
    };
    let d: domain::Directory = serde_json::from_value(
        stack.client.post(&path, &serde_json::json!({})).await?,
    )
    .map_err(|e| {
        crate::error::CliError::Usage(format!("the admin API answered an unexpected shape: {e}"))
    })?;
    emit(out, mode, &d, |o| {
        writeln!(
            o,
            "{id}: hold {}; directory is {}",
            match decision {
                HoldDecision::Release => "released (the next run applies it with a full sync)",
                HoldDecision::Discard => "discarded",
            },
            state_name(d.state)
        )
    })
}
