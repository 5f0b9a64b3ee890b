//! Lambda entry point of the admin API function.

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = admin::Settings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    // The write routes: schedules (sync requests, pause, resume), the retry queue and
    // customer buses (re-push, redrive); the retry queue also reports the dead-letter
    // depth of the status route (DELIVERY_DLQ_URL and CHANGE_DLQ_URL, summed).
    let scheduler = settings.scheduling.schedules.scheduler(&sdk)?;
    let engine = function_support::with_delivery(settings.scheduling.common.engine(&sdk), &sdk)?
        .with_scheduler(Arc::new(scheduler));
    let api = admin::AdminApi::new(engine, settings.webhook_base_url)
        .with_setup_base_url(settings.setup_base_url);
    run(service_fn(|req| admin::handler(&api, req))).await
}
