//! `bamboohr-sync`: the operator CLI and the `dev` local stack, as a library so tests
//! drive commands in-process through [`run`] exactly as the binary does.

use std::io::{BufRead, Write};

use clap::{Parser, Subcommand, ValueEnum};

pub mod commands;
pub mod dev;
pub mod error;
mod output;
mod receiver;
mod stack;

pub use error::CliError;
pub use stack::local_retry_queue;

/// BambooHR directory sync: operate a deployed stack or run one locally.
#[derive(Debug, Parser)]
#[command(name = "bamboohr-sync", version, about)]
pub struct Cli {
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = Output::Human)]
    pub output: Output,
    /// The local stack's data directory (store and secrets), used by every command
    /// except `dev --data-dir`.
    #[arg(
        long = "local-data-dir",
        global = true,
        env = "BAMBOOHR_SYNC_DATA_DIR",
        default_value = ".dev-data"
    )]
    pub data_dir: std::path::PathBuf,
    /// Operate this deployed CloudFormation stack instead of the local one.
    #[arg(long, global = true, env = "BAMBOOHR_SYNC_STACK")]
    pub stack: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Human-readable text or JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned text.
    Human,
    /// One JSON document.
    Json,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the local stack: webhook endpoint, scheduler, poller and dispatcher in one
    /// process on embedded adapters (file-backed store, in-process bus, local secrets).
    Dev(dev::DevArgs),
    /// Connect, inspect and change directories.
    #[command(subcommand)]
    Directories(commands::DirectoriesCmd),
    /// Manage a directory's delivery targets.
    #[command(subcommand)]
    Targets(commands::TargetsCmd),
    /// Sync a directory now.
    Sync(commands::SyncArgs),
    /// Last run, counts, staleness, holds and failing targets.
    Status(commands::StatusArgs),
    /// A directory's users.
    #[command(subcommand)]
    Users(commands::UsersCmd),
    /// A directory's groups.
    #[command(subcommand)]
    Groups(commands::GroupsCmd),
    /// A directory's sync runs.
    #[command(subcommand)]
    Runs(commands::RunsCmd),
    /// The delivery log.
    #[command(subcommand)]
    Deliveries(commands::DeliveriesCmd),
    /// Re-drive dead letters or re-push users to a target.
    #[command(subcommand)]
    Replay(commands::ReplayCmd),
    /// Release or discard what the safeguard held.
    #[command(subcommand)]
    Hold(commands::HoldCmd),
    /// A directory's audit log.
    #[command(subcommand)]
    Audit(commands::AuditCmd),
    /// A directory's compliance evidence.
    #[command(subcommand)]
    Evidence(commands::EvidenceCmd),
}

/// Runs one command, writing its result to `out` and reading secrets asked for on
/// stdin from `input`.
pub async fn run(cli: Cli, out: &mut dyn Write, input: &mut dyn BufRead) -> Result<(), CliError> {
    match cli.command {
        Command::Dev(args) => dev::run(args).await.map_err(CliError::from),
        command => {
            let stack = match &cli.stack {
                Some(name) => stack::Stack::deployed(name).await?,
                None => stack::Stack::local(&cli.data_dir).await?,
            };
            commands::execute(&stack, command, cli.output, out, input).await
        }
    }
}
