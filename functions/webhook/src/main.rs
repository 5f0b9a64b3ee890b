//! Lambda entry point of the webhook function.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let audit_table = function_support::audit_table_from_env()?;
    let mut engine = function_support::aws_engine_with_audit_table(&sdk, &config, &audit_table);
    // Event-based webhooks ask for a targeted run through the poller's schedules.
    let settings = function_support::SchedulerSettings::from_env()?;
    let poller_arn =
        std::env::var("POLLER_FUNCTION_ARN").map_err(|_| "POLLER_FUNCTION_ARN is not set")?;
    let scheduler = function_support::aws_scheduler(&sdk, &settings, &poller_arn)?;
    engine = engine.with_scheduler(Arc::new(scheduler));
    let mut deps = webhook::Deps::new(engine);
    // Request metrics (Embedded Metric Format lines on stdout) go here.
    if let Ok(namespace) = std::env::var("METRICS_NAMESPACE") {
        deps = deps.with_metrics(namespace);
    }
    run(service_fn(|req| webhook::handler(&deps, req))).await
}
