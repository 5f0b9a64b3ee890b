//! Proof, on a paused clock, that a throttled call is not retried before Retry-After
//! expires, in both of Retry-After's forms.
//!
//! A paused tokio clock jumps to the next timer whenever the runtime would park, even
//! while a socket is about to become readable; that would fire the per-request timeout
//! of an exchange still in flight. So the test never parks while waiting: it yields in a
//! loop (which keeps virtual time still) until the client reports, through a tracing
//! event, that it scheduled its retry, and only then moves time by hand.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bamboohr_client::{Auth, BambooClient, ClientOptions, SecretString};
use bamboohr_simulator::{Fault, FaultPlan, RetryAfter, SimConfig, Simulator};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Counts the client's "retrying" events.
#[derive(Clone, Default)]
struct RetrySignal(Arc<AtomicUsize>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for RetrySignal {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if m.0.starts_with("retrying") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl RetrySignal {
    fn retries(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Yields until `cond` holds. Yielding keeps a paused clock still; the bound is real time.
async fn spin_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Yields for a moment of real time, giving a wrongly early retry the chance to show.
async fn settle() {
    let until = std::time::Instant::now() + Duration::from_millis(100);
    spin_until("a moment to pass", || std::time::Instant::now() >= until).await;
}

async fn retry_waits_for(retry_after: RetryAfter, not_before: u64, by: u64) {
    let signal = RetrySignal::default();
    let _guard = tracing::subscriber::set_default(signal.clone());
    let sim = Simulator::generate(SimConfig {
        api_key: "k".into(),
        employees: 7,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::Status {
        status: 429,
        retry_after: Some(retry_after),
    }));
    let client = BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from("k")),
        ClientOptions::default(),
    )
    .unwrap();
    let call = tokio::spawn(async move { client.dataset_page(&["firstName"], 1, 50).await });

    spin_until("the client to schedule its retry", || signal.retries() == 1).await;
    assert_eq!(sim.request_count(), 1);

    tokio::time::advance(Duration::from_secs(not_before)).await;
    settle().await;
    assert_eq!(
        sim.request_count(),
        1,
        "retried before Retry-After expired ({not_before}s elapsed)"
    );

    tokio::time::advance(Duration::from_secs(by - not_before)).await;
    spin_until("the call to finish", || call.is_finished()).await;
    let page = call.await.unwrap().unwrap();
    assert_eq!(page.employees.len(), 7);
    assert_eq!(sim.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_only_once_retry_after_seconds_have_elapsed() {
    retry_waits_for(RetryAfter::Seconds(30), 29, 30).await;
}

#[tokio::test(start_paused = true)]
async fn a_429_with_an_http_date_is_retried_only_once_that_date_has_passed() {
    // The date is whole seconds, so the wait is 30 or 31 seconds.
    retry_waits_for(RetryAfter::HttpDateIn(30), 29, 32).await;
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_honoured_like_a_429() {
    let signal = RetrySignal::default();
    let _guard = tracing::subscriber::set_default(signal.clone());
    let sim = Simulator::generate(SimConfig {
        api_key: "k".into(),
        employees: 3,
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    sim.inject(FaultPlan::next(Fault::Status {
        status: 503,
        retry_after: Some(RetryAfter::Seconds(12)),
    }));
    let client = BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from("k")),
        ClientOptions::default(),
    )
    .unwrap();
    let call = tokio::spawn(async move { client.dataset_page(&["firstName"], 1, 50).await });
    spin_until("the client to schedule its retry", || signal.retries() == 1).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    settle().await;
    assert_eq!(sim.request_count(), 1, "retried before Retry-After expired");
    tokio::time::advance(Duration::from_secs(1)).await;
    spin_until("the call to finish", || call.is_finished()).await;
    call.await.unwrap().unwrap();
    assert_eq!(sim.request_count(), 2);
}
