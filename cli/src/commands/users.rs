//! `users ...`: a directory's users as synced (the list names them; `show` gives one
//! user's whole record).

use std::io::Write;

use clap::Subcommand;

use super::args::{dir_id, employee_id};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table};
use crate::stack::Stack;

/// `users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// A directory's users (ids, names, states).
    List {
        /// Directory id.
        directory: String,
        /// Only users in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// One user's fields, as synced.
    Show {
        /// Directory id.
        directory: String,
        /// BambooHR employee id.
        employee: String,
    },
}

/// Runs a `users` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: UsersCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        UsersCmd::List { directory, state } => {
            let id = dir_id(&directory)?;
            let query: Vec<(&str, String)> = state.iter().map(|s| ("state", s.clone())).collect();
            // The list names users; their HR fields are shown only by `users show`.
            let listed: Vec<serde_json::Value> = stack
                .client
                .list(&format!("/admin/directories/{id}/users"), &query)
                .await?;
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            emit(out, mode, &listed, |o| {
                let rows: Vec<Vec<String>> = listed
                    .iter()
                    .map(|u| {
                        vec![
                            text(&u["employeeId"]),
                            text(&u["id"]),
                            text(&u["displayName"]),
                            text(&u["state"]),
                            text(&u["version"]),
                        ]
                    })
                    .collect();
                table(o, &["EMPLOYEE", "USER", "NAME", "STATE", "VERSION"], &rows)
            })
        }
        UsersCmd::Show {
            directory,
            employee,
        } => {
            let id = dir_id(&directory)?;
            let e = employee_id(&employee)?;
            let user: domain::DirectoryUser = stack
                .client
                .get(&format!("/admin/directories/{id}/users/{e}"), &[])
                .await?;
            emit(out, mode, &user, |o| {
                let v = serde_json::to_value(&user).expect("a user serializes");
                let text = serde_json::to_string_pretty(&v).expect("a value serializes");
                writeln!(o, "{text}")
            })
        }
    }
}
