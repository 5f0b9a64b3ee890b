//! Lambda entry point of the setup page function (the portal).

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = function_support::CommonSettings::from_env()?;
    // ADMIN_API_URL: the control plane, through which the page changes configuration
    // (SigV4-signed with this function's role).
    let admin_url = std::env::var("ADMIN_API_URL")
        .map_err(|_| function_support::ConfigError::Missing("ADMIN_API_URL"))?;
    let sdk = aws_config::load_from_env().await;
    let engine = settings.engine(&sdk);
    let admin = admin::client::AdminClient::new(admin::client::Transport::Deployed {
        url: admin_url
            .trim_end_matches('/')
            .trim_end_matches("/admin")
            .to_string(),
        sdk: Box::new(sdk),
    })?;
    let portal = portal::Portal::new(engine, admin, portal::Cookies::Secure);
    run(service_fn(|req| portal::handler(&portal, req))).await
}
