//! Tuning of one client: per-request timeout, retry attempts and backoff, the total time
//! budget of a call, and how many requests may be in flight at once. The defaults suit
//! the poller: a full read of a large company within one Lambda invocation.

use std::time::Duration;

/// How a [`crate::BambooClient`] times out, retries and limits itself.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed for one HTTP request, from connecting to the end of the body.
    /// Default: 20 s (a 1000-row dataset page takes a few seconds at BambooHR).
    pub timeout: Duration,
    /// Attempts per call, the first included (1 disables retries). Default: 5.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles per retry (full jitter: the
    /// actual wait is uniformly random below the ceiling). Default: 500 ms.
    pub base_backoff: Duration,
    /// The largest backoff ceiling. Default: 30 s.
    pub max_backoff: Duration,
    /// Total time one call may take, retries and waits included. A Retry-After longer
    /// than what is left ends the call at once with the wait in the error. Default: 120 s
    /// (within a Lambda's 15 minutes, with room for several calls).
    pub budget: Duration,
    /// Requests this client (one directory) may have in flight at once; clones share
    /// the limit. Default: 4 (BambooHR throttles per company).
    pub max_concurrency: usize,
    /// Refuse to connect to private, loopback and link-local addresses (a deployed
    /// stack). Default: false (the local stack and its simulator are on loopback).
    pub block_private: bool,
    /// Largest response body read. Default: 64 MiB (a 1000-row dataset page with many
    /// fields is a few MB).
    pub max_body_bytes: usize,
}

/// 20 s per request, 5 attempts, backoff from 500 ms up to 30 s, a 120 s budget per call,
/// 4 requests in flight.
impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(20),
            max_attempts: 5,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            budget: Duration::from_secs(120),
            max_concurrency: 4,
            block_private: false,
            max_body_bytes: 64 << 20,
        }
    }
}
