//! `status`: each directory's last run, counts, staleness, hold, failing targets and
//! the stack's dead letters.

use std::io::Write;

use clap::Args;
use sync_engine::operate::Status;

use super::args::{dir_id, state_name};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, when};
use crate::stack::Stack;

/// `status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Directory id (every directory when omitted).
    pub directory: Option<String>,
}

/// Dead letters waiting in the stack's retry queue: deployed, the delivery and change
/// dead-letter queues summed; locally, those in the data directory's queue. `None`
/// for a stack without a retry queue.
/// Runs `status`.
pub(super) async fn run(
    stack: &Stack,
    a: StatusArgs,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let ids = match a.directory {
        Some(d) => vec![dir_id(&d)?],
        None => stack
            .client
            .list::<domain::Directory>("/admin/directories", &[])
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    // The dead-letter depth is the stack's: SQS deployed, the retry queue locally.
    let mut all: Vec<Status> = Vec::new();
    for id in &ids {
        all.push(
            stack
                .client
                .get(&format!("/admin/directories/{id}/status"), &[])
                .await?,
        );
    }
    emit(out, mode, &all, |o| {
        for s in &all {
            writeln!(o, "{}  {}", s.directory_id, state_name(s.state))?;
            writeln!(o, "  last success   {}", when(s.last_success))?;
            writeln!(o, "  stale          {}", if s.stale { "yes" } else { "no" })?;
            if let Some(h) = &s.hold {
                writeln!(
                    o,
                    "  held           run {}: would deactivate {}, delete {} of {}",
                    h.run_id, h.would_deactivate, h.would_delete, h.active_before
                )?;
            }
            if let Some(r) = &s.last_run {
                writeln!(
                    o,
                    "  last run       {} {:?} {} ({} seen, {} changed)",
                    r.id,
                    r.status,
                    r.mode.as_str(),
                    r.counts.seen,
                    r.counts.created + r.counts.updated + r.counts.deactivated + r.counts.deleted
                )?;
            }
            let users: Vec<String> = s.users.iter().map(|(k, v)| format!("{v} {k}")).collect();
            writeln!(o, "  users          {}", users.join(", "))?;
            for t in &s.targets {
                let counts: Vec<String> = t
                    .by_status
                    .iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect();
                writeln!(
                    o,
                    "  target {:<8} {}{}{}",
                    t.target_id,
                    if t.failing { "FAILING " } else { "ok " },
                    counts.join(", "),
                    if t.breaker_open {
                        " (breaker open)"
                    } else {
                        ""
                    }
                )?;
            }
            writeln!(
                o,
                "  dead letters   {}",
                s.dead_letter_depth
                    .map_or("not readable from here".to_string(), |n| n.to_string())
            )?;
            writeln!(
                o,
                "  evidence       {}",
                if s.evidence_stale { "stale" } else { "current" }
            )?;
        }
        Ok(())
    })
}
