//! Lambda entry point of the setup page function (the portal).

use std::sync::Arc;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = function_support::SchedulingSettings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    // Connecting writes the directory's schedule, as the admin API's connect does.
    let scheduler = settings.schedules.scheduler(&sdk)?;
    let engine = settings
        .common
        .engine(&sdk)
        .with_scheduler(Arc::new(scheduler));
    let portal = portal::Portal::new(engine, portal::Cookies::Secure);
    run(service_fn(|req| portal::handler(&portal, req))).await
}
