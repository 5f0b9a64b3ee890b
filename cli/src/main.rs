//! `bamboohr-sync`: the operator CLI. `dev` runs the whole system locally on the
//! embedded adapters, with no AWS account.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dev;
mod receiver;

/// BambooHR directory sync: operate a deployed stack or run one locally.
#[derive(Debug, Parser)]
#[command(name = "bamboohr-sync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local stack: webhook endpoint, poller and dispatcher in one process on
    /// embedded adapters (file-backed store, in-process bus, local secrets).
    Dev(dev::DevArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
