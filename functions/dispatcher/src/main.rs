//! Lambda entry point of the dispatcher function.

use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = dispatcher::Settings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let engine = function_support::with_delivery(settings.common.engine(&sdk), &sdk)?;
    // Delivery metrics (Embedded Metric Format lines on stdout) go here.
    let namespace = settings.common.metrics_namespace;
    run(service_fn(|event| {
        dispatcher::handler_with_metrics(&engine, &namespace, event)
    }))
    .await
}
