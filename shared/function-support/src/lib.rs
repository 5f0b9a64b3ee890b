//! Start-up shared by the Lambda binaries: read the stack's configuration from the
//! environment once, initialise JSON tracing, and build the engine on the AWS adapters.
//! Each `main.rs` stays a few lines.

use std::sync::Arc;
use std::time::Duration;

use aws_adapters::{DynamoStore, EventBridgeBus, SecretsManagerStore};
use ports::{CachingSecretStore, SystemClock};
use sync_engine::Engine;

pub mod scheduler;

pub use scheduler::{aws_scheduler, SchedulerSettings};

/// How long directory secrets stay cached in a warm function.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// A required environment variable is missing or empty.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set (the SAM template sets it)")]
pub struct ConfigError(&'static str);

/// The stack's resources, as the SAM template passes them.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The DynamoDB table.
    pub table_name: String,
    /// The EventBridge bus change events go to.
    pub event_bus_name: String,
    /// The Secrets Manager name prefix of directory secrets.
    pub secret_prefix: String,
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError(name))
}

impl StackConfig {
    /// Reads TABLE_NAME, EVENT_BUS_NAME and SECRET_PREFIX.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: var("TABLE_NAME")?,
            event_bus_name: var("EVENT_BUS_NAME")?,
            secret_prefix: var("SECRET_PREFIX")?,
        })
    }
}

/// JSON logs for CloudWatch, filtered by RUST_LOG (default `info`).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

/// The engine on AWS: DynamoDB store, cached Secrets Manager, EventBridge bus.
pub fn aws_engine(sdk: &aws_config::SdkConfig, config: &StackConfig) -> Engine {
    let store = DynamoStore::new(sdk, &config.table_name);
    let secrets = CachingSecretStore::new(
        SecretsManagerStore::new(sdk, &config.secret_prefix),
        SECRET_CACHE_TTL,
    );
    let bus = EventBridgeBus::new(sdk, &config.event_bus_name);
    Engine::new(
        Arc::new(store),
        Arc::new(secrets),
        Arc::new(bus),
        Arc::new(SystemClock),
    )
}

/// The dispatcher's extra capabilities on AWS: the retry queue (RETRY_QUEUE_URL) and
/// its dead-letter queue (DELIVERY_DLQ_URL), and the customer-bus publisher for
/// EventBridge targets.
pub fn with_delivery(engine: Engine, sdk: &aws_config::SdkConfig) -> Result<Engine, ConfigError> {
    let retry =
        aws_adapters::SqsRetryQueue::new(sdk, var("RETRY_QUEUE_URL")?, var("DELIVERY_DLQ_URL")?);
    Ok(engine
        .with_retry_queue(Arc::new(retry))
        .with_foreign_bus(Arc::new(aws_adapters::CustomerEventBus::new(sdk))))
}
