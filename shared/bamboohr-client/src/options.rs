//! Tuning of one client: per-request timeout, retry attempts and backoff, the total time
//! budget of a call, and how many requests may be in flight at once.

use std::time::Duration;

/// How a [`crate::BambooClient`] times out, retries and limits itself.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for one HTTP request, from connecting to the end of the body.
    pub timeout: Duration,
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles per retry (full jitter: the
    /// actual wait is uniformly random below the ceiling).
    pub base_backoff: Duration,
    /// The largest backoff ceiling.
    pub max_backoff: Duration,
    /// Total time one call may take, retries and waits included.
    pub budget: Duration,
    /// Requests this client (one directory) may have in flight at once.
    pub max_concurrency: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            budget: Duration::from_secs(120),
            max_concurrency: 4,
        }
    }
}
