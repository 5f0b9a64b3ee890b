//! The capabilities every service needs, built once per process and shared.

use std::sync::Arc;
use std::time::Duration;

use ports::{Clock, EventBus, SecretStore, Store};

/// The engine's dependencies. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    /// Persistent state.
    pub store: Arc<dyn Store>,
    /// Directory credentials (callers wrap it in a cache).
    pub secrets: Arc<dyn SecretStore>,
    /// Where change events are published.
    pub bus: Arc<dyn EventBus>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Outbound HTTP for deliveries; one client so connections are reused.
    pub http: reqwest::Client,
}

impl Engine {
    /// Builds an engine with an outbound HTTP client whose timeout matches the delivery
    /// contract (15 s per request).
    pub fn new(
        store: Arc<dyn Store>,
        secrets: Arc<dyn SecretStore>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("bamboohr-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is static and valid");
        Self {
            store,
            secrets,
            bus,
            clock,
            http,
        }
    }
}
