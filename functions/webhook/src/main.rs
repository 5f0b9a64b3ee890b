//! Lambda entry point of the webhook function.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = webhook::Settings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    // Event-based webhooks ask for a targeted run through the poller's schedules.
    let scheduler = settings.schedules.scheduler(&sdk)?;
    let engine = settings
        .common
        .engine(&sdk)
        .with_scheduler(Arc::new(scheduler));
    // Request metrics (Embedded Metric Format lines on stdout) go here.
    let deps = webhook::Deps::new(engine).with_metrics(settings.common.metrics_namespace);
    run(service_fn(|req| webhook::handler(&deps, req))).await
}
