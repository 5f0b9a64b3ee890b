//! `groups ...`: a directory's groups, as derived from its group-source fields.

use std::io::Write;

use clap::Subcommand;

use super::args::dir_id;
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table};
use crate::stack::Stack;

/// `groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCmd {
    /// A directory's groups.
    List {
        /// Directory id.
        directory: String,
    },
}

/// Runs a `groups` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: GroupsCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let GroupsCmd::List { directory } = cmd;
    let id = dir_id(&directory)?;
    let groups: Vec<domain::Group> = stack
        .client
        .list(&format!("/admin/directories/{id}/groups"), &[])
        .await?;
    emit(out, mode, &groups, |o| {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|g| {
                vec![
                    g.id.to_string(),
                    g.source.clone(),
                    g.name.clone(),
                    g.member_count.map_or("-".into(), |n| n.to_string()),
                    if g.deleted { "deleted" } else { "" }.into(),
                ]
            })
            .collect();
        table(o, &["GROUP", "SOURCE", "NAME", "MEMBERS", ""], &rows)
    })
}
