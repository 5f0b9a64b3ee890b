//! Lambda entry point of the dispatcher function.

use lambda_runtime::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let engine =
        function_support::with_delivery(function_support::aws_engine(&sdk, &config), &sdk)?;
    run(service_fn(|event| dispatcher::handler(&engine, event))).await
}
