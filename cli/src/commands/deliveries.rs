//! `deliveries ...`: the delivery log, the latest delivery of each user to each
//! target, filtered by target, user or status.

use std::io::Write;

use clap::Subcommand;
use ports::{DeliveryRecord, DeliveryStatus};
use serde_json::json;

use super::args::{dir_id, employee_id, target_id, usage};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table, when};
use crate::stack::Stack;

/// `deliveries ...`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCmd {
    /// The latest delivery of each user to each target.
    List {
        /// Directory id.
        directory: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Only this user (user id `usr_...` or BambooHR employee id).
        #[arg(long)]
        user: Option<String>,
        /// Only this status (delivered, skipped, retrying, failed, dead_lettered).
        #[arg(long)]
        status: Option<String>,
    },
}

/// Runs a `deliveries` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: DeliveriesCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let DeliveriesCmd::List {
        directory,
        target,
        user,
        status,
    } = cmd;
    let id = dir_id(&directory)?;
    let status = match status {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<DeliveryStatus>(json!(s)).map_err(|_| {
                usage(format!(
                    "--status {s:?}: delivered, skipped, retrying, failed or dead_lettered"
                ))
            })?,
        ),
    };
    // A user is named by its user id or its BambooHR employee id.
    let object_id = match user {
        None => None,
        Some(u) if u.starts_with("usr_") => Some(u),
        Some(u) => Some(domain::UserId::derive(&id, &employee_id(&u)?).to_string()),
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(t) = target.as_deref().map(target_id).transpose()? {
        query.push(("target", t.to_string()));
    }
    if let Some(u) = object_id {
        query.push(("user", u));
    }
    if let Some(s) = status {
        query.push(("status", s.as_str().to_string()));
    }
    let records: Vec<DeliveryRecord> = stack
        .client
        .list(&format!("/admin/directories/{id}/deliveries"), &query)
        .await?;
    emit(out, mode, &records, |o| {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.target_id.to_string(),
                    r.object_id.clone(),
                    r.status.as_str().into(),
                    r.version.to_string(),
                    r.attempts.to_string(),
                    when(Some(r.last_attempt_at)),
                    r.last_error
                        .clone()
                        .or(r.skipped_reason.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        table(
            o,
            &[
                "TARGET", "OBJECT", "STATUS", "VERSION", "ATTEMPTS", "LAST", "REASON",
            ],
            &rows,
        )
    })
}
