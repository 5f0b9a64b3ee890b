//! Lambda entry point of the poller function.

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error};
use ports::Scheduler;

#[tokio::main]
async fn main() -> Result<(), Error> {
    function_support::init_tracing();
    let config = function_support::StackConfig::from_env()?;
    let schedules = function_support::scheduler::SchedulerSettings::from_env()?;
    let retention = function_support::revoked_retention_from_env()?;
    let sdk = aws_config::load_from_env().await;
    let audit_table = function_support::audit_table_from_env()?;
    let engine = function_support::aws_engine_with_audit_table(&sdk, &config, &audit_table);
    let factory_sdk = sdk.clone();
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
    .with_revoked_retention(retention);
    let namespace =
        std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "bamboohr-sync".to_string());
    run(service_fn(|event| async {
        let response = poller::handler(&poller, event).await?;
        if let Some(run) = &response.run {
            // One Embedded Metric Format line per run on stdout; CloudWatch Logs turns
            // it into the stack's sync metrics.
            println!("{}", poller::metrics::run_metrics_emf(&namespace, run));
        }
        Ok::<_, Error>(response)
    }))
    .await
}
