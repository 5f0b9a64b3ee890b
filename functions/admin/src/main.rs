//! Lambda entry point of the admin API function.

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let engine = function_support::aws_engine(&sdk, &config);
    run(service_fn(|req| admin::handler(&engine, req))).await
}
