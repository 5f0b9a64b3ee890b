//! `bamboohr-simulator`: serves a simulated BambooHR company on loopback for the dev
//! stack and subprocess tests, until Ctrl-C. Prints its base URL on the first line.

use std::net::SocketAddr;
use std::path::PathBuf;

use bamboohr_simulator::{RetrySchedule, SimConfig, Simulator, WebhookPayload};
use clap::Parser;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "bamboohr-simulator",
    about = "A simulated BambooHR API on 127.0.0.1"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Employees in the generated company.
    #[arg(long, default_value_t = 25)]
    employees: usize,
    /// Seed of the generated company.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The API key clients must send (HTTP Basic user name).
    #[arg(long, env = "BAMBOOHR_SIM_API_KEY", default_value = "sim-api-key")]
    api_key: String,
    /// A JSON array of employees to serve instead of a generated company.
    #[arg(long)]
    company_file: Option<PathBuf>,
    /// Push a signed webhook here after every /_sim mutation.
    #[arg(long)]
    webhook_url: Option<String>,
    /// The webhook signing key (required with --webhook-url).
    #[arg(long, env = "BAMBOOHR_SIM_WEBHOOK_KEY", requires = "webhook_url")]
    webhook_key: Option<String>,
    /// The webhook payload family: `field` (field-based) or `event` (event-based).
    #[arg(long, default_value = "field", value_parser = ["field", "event"])]
    webhook_payload: String,
    /// Scale of BambooHR's 5xx retry delays (5, 10, 20, 40, 80 minutes); 1 is real time,
    /// 0.001 turns 5 minutes into 0.3 s.
    #[arg(long, default_value_t = 1.0)]
    webhook_time_scale: f64,
    /// Fields the API key may not see (repeatable).
    #[arg(long = "restricted-field")]
    restricted_fields: Vec<String>,
    /// The largest page[limit] of the employee list.
    #[arg(long, default_value_t = 100)]
    page_limit_max: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cfg = SimConfig {
        api_key: args.api_key,
        seed: args.seed,
        employees: args.employees,
        restricted_fields: args.restricted_fields,
        page_limit_max: args.page_limit_max,
    };
    let sim = match &args.company_file {
        Some(path) => Simulator::from_company_file(cfg, path)?,
        None => Simulator::generate(cfg),
    };
    if let Some(url) = &args.webhook_url {
        let key = args
            .webhook_key
            .as_deref()
            .ok_or("--webhook-url needs --webhook-key")?;
        let payload = if args.webhook_payload == "event" {
            WebhookPayload::EventBased
        } else {
            WebhookPayload::FieldBased
        };
        sim.set_webhook_target_with(
            url,
            key.as_bytes(),
            payload,
            RetrySchedule::scaled(args.webhook_time_scale),
        );
    }
    let server = sim
        .serve_on(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await?;
    // The first stdout line is the contract with scripts that start the simulator.
    println!("{}", server.base_url);
    tracing::info!(base_url = %server.base_url, employees = sim.employees().len(), "serving");
    tokio::signal::ctrl_c().await?;
    drop(server);
    Ok(())
}
