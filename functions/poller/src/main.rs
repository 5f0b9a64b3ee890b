//! Lambda entry point of the poller function.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error};
use ports::Scheduler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let settings = poller::Settings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let engine = settings.common.engine(&sdk);
    let factory_sdk = sdk.clone();
    let schedules = settings.schedules.clone();
    let poller = poller::Poller::with_scheduler_factory(
        engine,
        Box::new(move |arn| {
            match function_support::scheduler::aws_scheduler(&factory_sdk, &schedules, arn) {
                Ok(s) => Some(Arc::new(s) as Arc<dyn Scheduler>),
                Err(e) => {
                    tracing::error!(reason = %e, "continuation runs cannot be scheduled");
                    None
                }
            }
        }),
    )
    .with_revoked_retention(settings.retention);
    let namespace = settings.common.metrics_namespace;
    run(service_fn(|event| async {
        let response = poller::handler(&poller, event).await?;
        if let Some(run) = &response.run {
            // One Embedded Metric Format line per run on stdout; CloudWatch Logs turns
            // it into the stack's sync metrics.
            println!("{}", poller::metrics::run_metrics_emf(&namespace, run));
        }
        if let Some(stale) = response.stale_directories {
            // Every sweep, zero included: the stale alarm's gauge.
            println!(
                "{}",
                poller::metrics::sweep_metrics_emf(
                    &namespace,
                    time::OffsetDateTime::now_utc(),
                    stale
                )
            );
        }
        Ok::<_, Error>(response)
    }))
    .await
}
