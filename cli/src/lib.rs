//! `bamboohr-sync`: the operator CLI and the `dev` local stack, as a library so tests
//! drive commands in-process through [`run`] exactly as the binary does.

use std::io::{BufRead, Write};

use clap::Parser;

pub mod commands;
pub mod dev;
pub mod error;
mod output;
mod receiver;
mod stack;

pub use commands::Command;
pub use error::CliError;
pub use output::Output;
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
    /// Operate the deployed stack whose admin API is at this URL (its `AdminApiUrl`
    /// output), without looking the stack up.
    #[arg(long, global = true, env = "BAMBOOHR_SYNC_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Runs one command, writing its result to `out` and reading secrets asked for on
/// stdin from `input`.
pub async fn run(cli: Cli, out: &mut dyn Write, input: &mut dyn BufRead) -> Result<(), CliError> {
    match cli.command {
        Command::Dev(args) => dev::run(args, cli.output).await.map_err(CliError::from),
        command => {
            let stack = if cli.stack.is_some() || cli.admin_url.is_some() {
                stack::Stack::deployed(cli.stack.as_deref(), cli.admin_url.as_deref()).await?
            } else {
                stack::Stack::local(&cli.data_dir).await?
            };
            commands::execute(&stack, command, cli.output, out, input).await
        }
    }
}
