//! Lambda entry point of the dispatcher function.

use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let engine = function_support::with_delivery(
        function_support::aws_engine_with_audit_table(
            &sdk,
            &config,
            &function_support::audit_table_from_env()?,
        ),
        &sdk,
    )?;
    // Delivery metrics (Embedded Metric Format lines on stdout) go here.
    let namespace =
        std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "bamboohr-sync".to_string());
    run(service_fn(|event| {
        dispatcher::handler_with_metrics(&engine, &namespace, event)
    }))
    .await
}
