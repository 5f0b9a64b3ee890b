//! Lambda entry point of the admin API function.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let sdk = aws_config::load_from_env().await;
    // The write routes: schedules (sync requests, pause, resume), the retry queue and
    // customer buses (re-push, redrive); the retry queue also reports the dead-letter
    // depth of the status route (DELIVERY_DLQ_URL and CHANGE_DLQ_URL, summed).
    let settings = function_support::SchedulerSettings::from_env()?;
    let poller_arn =
        std::env::var("POLLER_FUNCTION_ARN").map_err(|_| "POLLER_FUNCTION_ARN is not set")?;
    let scheduler = function_support::aws_scheduler(&sdk, &settings, &poller_arn)?;
    let engine = function_support::with_delivery(
        function_support::aws_engine_with_audit_table(
            &sdk,
            &config,
            &function_support::audit_table_from_env()?,
        ),
        &sdk,
    )?
    .with_scheduler(Arc::new(scheduler));
    let api = admin::AdminApi { engine };
    run(service_fn(|req| admin::handler(&api, req))).await
}
