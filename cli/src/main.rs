//! `bamboohr-sync`: parses the command line, sets up logging to stderr and runs the
//! command (see the library for everything else).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = bamboohr_sync::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BSYNC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // Not locked for the whole run: the `dev` stack prints from several tasks.
    let mut stdout = std::io::stdout();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let result = bamboohr_sync::run(cli, &mut stdout, &mut stdin).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
