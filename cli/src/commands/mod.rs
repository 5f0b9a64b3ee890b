//! The operator commands, one module per noun of the command line, each holding that
//! noun's argument shapes (clap) and what its commands do, over `sync_engine::operate`
//! and the store. Secrets are read from stdin or an environment variable, never from
//! the command line, and never printed ([`secret`]).

use std::io::{BufRead, Write};

use domain::{DirectoryId, DirectoryState, EmployeeId, TargetId};

use crate::error::CliError;
use crate::stack::Stack;
use crate::{Command, Output};

mod audit;
mod deliveries;
mod directories;
mod evidence;
mod groups;
mod hold;
mod replay;
mod runs;
mod secret;
mod status;
mod sync;
mod targets;
mod users;

pub use audit::AuditCmd;
pub use deliveries::DeliveriesCmd;
pub use directories::{
    ConnectArgs, DirectoriesCmd, UpdateArgs, ACCESS_TOKEN_ENV, API_KEY_ENV, CLIENT_SECRET_ENV,
    REFRESH_TOKEN_ENV,
};
pub use evidence::EvidenceCmd;
pub use groups::GroupsCmd;
pub use hold::HoldCmd;
pub use replay::ReplayCmd;
pub use runs::RunsCmd;
pub use secret::SecretSource;
pub use status::StatusArgs;
pub use sync::SyncArgs;
pub use targets::{KindArg, TargetArgs, TargetsCmd, TARGET_SECRET_ENV};
pub use users::UsersCmd;

/// Runs a command (every one but `dev`) against `stack`.
pub async fn execute(
    stack: &Stack,
    command: Command,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    match command {
        Command::Dev(_) => Err(usage("`dev` runs its own stack")),
        Command::Directories(c) => directories::run(stack, c, mode, out, input).await,
        Command::Targets(c) => targets::run(stack, c, mode, out, input).await,
        Command::Sync(a) => sync::run(stack, a, mode, out).await,
        Command::Status(a) => status::run(stack, a, mode, out).await,
        Command::Users(c) => users::run(stack, c, mode, out).await,
        Command::Groups(c) => groups::run(stack, c, mode, out).await,
        Command::Runs(c) => runs::run(stack, c, mode, out).await,
        Command::Deliveries(c) => deliveries::run(stack, c, mode, out).await,
        Command::Replay(c) => replay::run(stack, c, mode, out).await,
        Command::Hold(c) => hold::run(stack, c, mode, out).await,
        Command::Audit(c) => audit::run(stack, c, mode, out).await,
        Command::Evidence(c) => evidence::run(stack, c, mode, out).await,
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn dir_id(s: &str) -> Result<DirectoryId, CliError> {
    DirectoryId::parse(s).map_err(|e| usage(format!("directory id {s:?}: {e}")))
}

fn target_id(s: &str) -> Result<TargetId, CliError> {
    TargetId::parse(s).map_err(|e| usage(format!("target id {s:?}: {e}")))
}

fn employee_id(s: &str) -> Result<EmployeeId, CliError> {
    EmployeeId::parse(s).map_err(|e| usage(format!("employee id {s:?}: {e}")))
}

fn state_name(s: DirectoryState) -> &'static str {
    match s {
        DirectoryState::Active => "active",
        DirectoryState::Paused => "paused",
        DirectoryState::Held => "held",
        DirectoryState::Revoked => "revoked",
    }
}
