//! The operator commands, one module per noun of the command line, each holding that
//! noun's argument shapes (clap) and what its commands do, over `sync_engine::operate`
//! and the store. Secrets are read from stdin or an environment variable, never from
//! the command line, and never printed ([`secret`]).

use std::io::{BufRead, Write};

use clap::Subcommand;

use crate::error::CliError;
use crate::output::Output;
use crate::stack::Stack;
use args::usage;

mod args;
mod audit;
mod deliveries;
pub(crate) mod directories;
mod evidence;
mod groups;
mod hold;
mod oauth_client;
mod quarantine;
mod replay;
mod runs;
mod secret;
mod setup_links;
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
pub use oauth_client::{OAuthClientCmd, OAUTH_CLIENT_SECRET_ENV};
pub use quarantine::QuarantineCmd;
pub use replay::ReplayCmd;
pub use runs::RunsCmd;
pub use secret::SecretSource;
pub use setup_links::SetupLinksCmd;
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
        Command::Quarantine(c) => quarantine::run(stack, c, mode, out).await,
        Command::Replay(c) => replay::run(stack, c, mode, out).await,
        Command::Hold(c) => hold::run(stack, c, mode, out).await,
        Command::Audit(c) => audit::run(stack, c, mode, out).await,
        Command::Evidence(c) => evidence::run(stack, c, mode, out).await,
        Command::SetupLinks(c) => setup_links::run(stack, c, mode, out).await,
        Command::OauthClient(c) => oauth_client::run(stack, c, mode, out, input).await,
    }
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local stack: webhook endpoint, scheduler, poller and dispatcher in one
    /// process on embedded adapters (file-backed store, in-process bus, local secrets).
    Dev(crate::dev::DevArgs),
    /// Connect, inspect and change directories.
    #[command(subcommand)]
    Directories(DirectoriesCmd),
    /// Manage a directory's delivery targets.
    #[command(subcommand)]
    Targets(TargetsCmd),
    /// Sync a directory now.
    Sync(SyncArgs),
    /// Last run, counts, staleness, holds and failing targets.
    Status(StatusArgs),
    /// A directory's users.
    #[command(subcommand)]
    Users(UsersCmd),
    /// A directory's groups.
    #[command(subcommand)]
    Groups(GroupsCmd),
    /// A directory's sync runs.
    #[command(subcommand)]
    Runs(RunsCmd),
    /// The delivery log.
    #[command(subcommand)]
    Deliveries(DeliveriesCmd),
    /// Change events refused for good by the change queue or the bus, set aside.
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Re-drive dead letters or re-push users to a target.
    #[command(subcommand)]
    Replay(ReplayCmd),
    /// Release or discard what the safeguard held.
    #[command(subcommand)]
    Hold(HoldCmd),
    /// A directory's audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// A directory's compliance evidence.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Links a customer's IT admin connects their company with (the setup page).
    #[command(subcommand)]
    SetupLinks(SetupLinksCmd),
    /// The stack's BambooHR OAuth client ("Connect with BambooHR" on the setup page).
    #[command(subcommand)]
    OauthClient(OAuthClientCmd),
}
