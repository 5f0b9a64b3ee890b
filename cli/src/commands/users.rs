//! `users ...`: a directory's users as synced (the list names them; `show` gives one
//! user's whole record).

use std::io::Write;

use clap::Subcommand;
use serde_json::json;
use sync_engine::operate;

use super::args::{dir_id, employee_id, usage};
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
            operate::directory(&stack.engine, &id).await?;
            let mut all = stack.engine.store.list_users(&id).await?;
            if let Some(s) = &state {
                all.retain(|u| u.state.as_str() == s);
            }
            // The list names users; their HR fields are shown only by `users show`.
            let listed: Vec<serde_json::Value> = all
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id, "employeeId": u.employee_id, "displayName": u.display_name,
                        "state": u.state, "version": u.version,
                    })
                })
                .collect();
            emit(out, mode, &listed, |o| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|u| {
                        vec![
                            u.employee_id.to_string(),
                            u.id.to_string(),
                            u.display_name.clone().unwrap_or_default(),
                            u.state.as_str().into(),
                            u.version.to_string(),
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
            let user = stack
                .engine
                .store
                .get_user(&id, &e)
                .await?
                .ok_or_else(|| usage(format!("no employee {e} in {id}")))?;
            emit(out, mode, &user, |o| {
                let v = serde_json::to_value(&user).expect("a user serializes");
                let text = serde_json::to_string_pretty(&v).expect("a value serializes");
                writeln!(o, "{text}")
            })
        }
    }
}
