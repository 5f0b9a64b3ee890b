//! The capabilities every service needs, built once per process and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use ports::{Clock, EventBus, ForeignBus, RetryQueue, SecretStore, Store};

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
    /// Where failed deliveries wait for their next attempt. Every delivery needs one
    /// (see [`Engine::retry_queue`]); the webhook and the poller, which deliver
    /// nothing, run without.
    pub retry_queue: Option<Arc<dyn RetryQueue>>,
    /// Publisher for EventBridge targets (customers' buses).
    pub foreign_bus: Option<Arc<dyn ForeignBus>>,
    /// Schedules poller runs; with one, an event-based webhook asks for a targeted run
    /// a minute later instead of waiting for the directory's next incremental run.
    pub scheduler: Option<Arc<dyn ports::Scheduler>>,
    /// What SCIM providers announced about themselves, per base URL.
    pub scim_capabilities: Arc<ProviderCapabilities>,
    /// When each directory's webhook keys were last re-read past the secret cache
    /// (a signature that failed with the cached keys), so a flood of bad signatures
    /// costs at most one read of Secrets Manager per directory per interval.
    pub key_rereads: Arc<RereadLimiter>,
    /// Which URLs targets and BambooHR may be called at (HTTPS only on a deployed
    /// stack, private networks blocked unless the stack allows them).
    pub outbound: outbound_http::Policy,
}

/// Whether each SCIM provider (by base URL) announced PATCH support, with when that
/// was read: held by the engine (one per process, like the HTTP client's connection
/// pool) so a provider's `/ServiceProviderConfig` is read about once an hour rather
/// than on every delivery, and timed by the engine's clock.
#[derive(Debug, Default)]
pub struct ProviderCapabilities(Mutex<HashMap<String, (OffsetDateTime, bool)>>);

impl ProviderCapabilities {
    /// The answer read for `base_url` less than `fresh_for` before `now`, if any.
    pub fn patch_supported(
        &self,
        base_url: &str,
        now: OffsetDateTime,
        fresh_for: time::Duration,
    ) -> Option<bool> {
        let known = self.0.lock().ok()?.get(base_url).copied();
        known
            .filter(|(at, _)| now - *at < fresh_for)
            .map(|(_, patch)| patch)
    }

    /// Remembers what `base_url` announced at `now`.
    pub fn remember(&self, base_url: &str, now: OffsetDateTime, patch: bool) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(base_url.to_string(), (now, patch));
        }
    }
}

/// At most one re-read per key (a directory id) per interval, timed by the engine's
/// clock: held by the engine (one per process, like the secret cache it reaches past).
#[derive(Debug, Default)]
pub struct RereadLimiter(Mutex<HashMap<String, OffsetDateTime>>);

impl RereadLimiter {
    /// Whether `key` may be re-read at `now`: true (and remembered) when its last
    /// re-read was at least `every` ago or never happened.
    pub fn try_take(&self, key: &str, now: OffsetDateTime, every: time::Duration) -> bool {
        let Ok(mut last) = self.0.lock() else {
            return false;
        };
        match last.get(key) {
            Some(at) if now - *at < every => false,
            _ => {
                // Forget entries older than the interval, so the map stays as small
                // as the set of directories being refused right now.
                last.retain(|_, at| now - *at < every);
                last.insert(key.to_string(), now);
                true
            }
        }
    }
}

/// The outbound client: the delivery contract's timeouts (15 s a request), no
/// redirects, and under a policy blocking private networks, public addresses only.
fn outbound_client(policy: outbound_http::Policy) -> reqwest::Client {
    outbound_http::client_builder(policy)
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("bamboohr-sync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client configuration is static and valid")
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
        let outbound = outbound_http::Policy::local();
        let http = outbound_client(outbound);
        Self {
            store,
            secrets,
            bus,
            clock,
            http,
            retry_queue: None,
            foreign_bus: None,
            scheduler: None,
            scim_capabilities: Arc::default(),
            key_rereads: Arc::default(),
            outbound,
        }
    }

    /// The same engine, calling targets and BambooHR under `policy` (a deployed stack:
    /// [`outbound_http::Policy::deployed`]; the default is the local stack's).
    pub fn with_outbound(mut self, policy: outbound_http::Policy) -> Self {
        self.outbound = policy;
        self.http = outbound_client(policy);
        self
    }

    /// The same engine, handing failed deliveries to `queue` instead of failing the
    /// change-queue message.
    pub fn with_retry_queue(mut self, queue: Arc<dyn RetryQueue>) -> Self {
        self.retry_queue = Some(queue);
        self
    }

    /// The retry queue, which deliveries require: a retryable failure always leaves
    /// the ordered change queue for the retry path, so one target never holds up an
    /// object's later changes. Without one a delivery is refused before anything is
    /// sent.
    pub fn retry_queue(&self) -> Result<&Arc<dyn RetryQueue>, crate::error::EngineError> {
        self.retry_queue
            .as_ref()
            .ok_or(crate::error::EngineError::MissingCapability(
                "a retry queue",
            ))
    }

    /// The same engine, scheduling poller runs through `scheduler`.
    pub fn with_scheduler(mut self, scheduler: Arc<dyn ports::Scheduler>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// The same engine, publishing EventBridge targets' events through `bus`.
    pub fn with_foreign_bus(mut self, bus: Arc<dyn ForeignBus>) -> Self {
        self.foreign_bus = Some(bus);
        self
    }
}
