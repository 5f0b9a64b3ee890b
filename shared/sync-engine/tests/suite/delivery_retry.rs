//! The dispatcher's retry path on the embedded adapters, against a local scripted
//! receiver and a fixed clock: failed deliveries leave the change queue for the retry
//! queue, Retry-After is honoured, growing delays end in the dead-letter queue, a 410
//! disables the target, the circuit breaker stops calls, and the delivery log says
//! what happened.

use crate::common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use common::{app_target, harness, Harness};
use domain::{ChangeEvent, DirectoryUser, EmployeeId, EventType, UserState};
use embedded_adapters::InProcessRetryQueue;
use ports::{DeliveryQuery, DeliveryStatus, DeliveryStore, Store, UserWrite};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::deliver::replay::{redrive_dead_letters, repush, run_retry, RetryOutcome};

/// One scripted answer: status, Retry-After, how long to hang before answering.
type Answer = (u16, Option<&'static str>, Duration);

/// A receiver that answers from a script (then 204 forever) and counts every request.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    requests: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Scripted {
    fn then(&self, status: u16, retry_after: Option<&'static str>) -> &Self {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, retry_after, Duration::ZERO));
        self
    }
    fn then_hang(&self, for_: Duration) -> &Self {
        self.answers.lock().unwrap().push_back((204, None, for_));
        self
    }
    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
    /// Versions received with a 2xx answer.
    fn accepted_versions(&self) -> Vec<u64> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .map(|(_, v)| *v)
            .collect()
    }
}

async fn scripted() -> (String, Scripted) {
    let script = Scripted::default();
    let s = script.clone();
    let app = Router::new().fallback(move |_h: HeaderMap, body: axum::body::Bytes| {
        let s = s.clone();
        async move {
            let (status, retry_after, hang) =
                s.answers
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or((204, None, Duration::ZERO));
            if !hang.is_zero() {
                tokio::time::sleep(hang).await;
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            s.requests
                .lock()
                .unwrap()
                .push((status.to_string(), v["version"].as_u64().unwrap_or(0)));
            let mut resp = StatusCode::from_u16(status).unwrap().into_response();
            if let Some(after) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}

/// A harness whose engine hands failures to an in-process retry queue, with a short
/// HTTP timeout so the timeout test runs quickly.
async fn with_retries(targets: Vec<domain::Target>) -> (Harness, Arc<InProcessRetryQueue>) {
    let mut h = harness("k", None, targets).await;
    let queue = Arc::new(InProcessRetryQueue::new(h.clock.clone()));
    let mut engine = h.engine.clone().with_retry_queue(queue.clone());
    engine.http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    h.engine = engine;
    (h, queue)
}

async fn store_version(h: &Harness, emp: &str, version: u64, first: &str) -> ChangeEvent {
    let e = EmployeeId::parse(emp).unwrap();
    let before = h.store.get_user(&h.dir, &e).await.unwrap();
    let mut u = DirectoryUser::new(h.dir.clone(), e, UserState::Active);
    u.first_name = Some(first.into());
    u.version = version;
    u.refresh_fingerprint();
    let event = domain::ChangeEvent::for_user_write(before.as_ref(), &u, common::now());
    h.store
        .write_user(&UserWrite {
            user: u,
            expected_version: before.map(|b| b.version),
            events: vec![event.clone()],
        })
        .await
        .unwrap();
    event
}

/// Moves the clock to the earliest waiting retry and runs every task then visible.
async fn run_due(h: &Harness, queue: &InProcessRetryQueue) -> Vec<RetryOutcome> {
    let at = queue.next_visible_at().expect("a retry is waiting");
    if at > h.clock_now() {
        h.clock.set(at);
    }
    let mut out = Vec::new();
    for task in queue.take_visible(h.clock_now()) {
        out.push(run_retry(&h.engine, &task).await.unwrap());
    }
    out
}

trait Now {
    fn clock_now(&self) -> time::OffsetDateTime;
}

impl Now for Harness {
    fn clock_now(&self) -> time::OffsetDateTime {
        ports::Clock::now(self.clock.as_ref())
    }
}

#[tokio::test]
async fn a_failing_target_leaves_the_change_queue_and_the_healthy_one_gets_each_event_once() {
    let (healthy_url, healthy) = scripted().await;
    let (failing_url, failing) = scripted().await;
    failing.then(503, None).then(503, None);
    let (h, queue) = with_retries(vec![
        app_target("healthy", &healthy_url),
        app_target("failing", &failing_url),
    ])
    .await;

    let v1 = store_version(&h, "7", 1, "Ada").await;
    let report = dispatch(&h.engine, &v1).await.unwrap();
    assert!(
        !report.needs_retry(),
        "the change message succeeds: {report:?}"
    );
    assert!(matches!(
        report.targets[1].1,
        TargetOutcome::Scheduled { retries: 0, .. }
    ));
    // The object's next change is not held up by the failing target.
    let v2 = store_version(&h, "7", 2, "Ada L.").await;
    assert!(!dispatch(&h.engine, &v2).await.unwrap().needs_retry());
    assert_eq!(healthy.accepted_versions(), vec![1, 2]);

    // Both retries re-read the current state: the failing target gets version 2
    // once, never version 1 after it.
    while queue.waiting() > 0 {
        run_due(&h, &queue).await;
    }
    assert_eq!(failing.accepted_versions(), vec![2]);
    assert_eq!(
        healthy.accepted_versions(),
        vec![1, 2],
        "no redelivery to the healthy target"
    );
    let log = h
        .store
        .get_delivery(
            &h.dir,
            &domain::TargetId::parse("failing").unwrap(),
            &v1.object_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.status, DeliveryStatus::Delivered);
    assert_eq!(log.version, 2);
}

#[tokio::test]
async fn a_429_with_retry_after_gets_no_request_before_it_expires() {
    let (url, app) = scripted().await;
    app.then(429, Some("120"));
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let event = store_version(&h, "7", 1, "Ada").await;

    let report = dispatch(&h.engine, &event).await.unwrap();
    let TargetOutcome::Scheduled {
        next_attempt_at, ..
    } = report.targets[0].1
    else {
        panic!("expected a scheduled retry: {report:?}");
    };
    assert!(next_attempt_at >= common::now() + time::Duration::seconds(120));

    // The task surfaces early (a queue caps one delay): it is sent back, untried.
    h.clock.advance(time::Duration::seconds(60));
    let early = queue.take_visible(common::now() + time::Duration::hours(1));
    assert_eq!(early.len(), 1);
    assert_eq!(
        run_retry(&h.engine, &early[0]).await.unwrap(),
        RetryOutcome::NotDue
    );
    assert_eq!(app.requests(), 1, "no request before Retry-After expired");

    let outcomes = run_due(&h, &queue).await;
    assert!(h.clock_now() >= common::now() + time::Duration::seconds(120));
    assert!(matches!(
        outcomes[..],
        [RetryOutcome::Attempted {
            outcome: TargetOutcome::Delivered { .. }
        }]
    ));
    assert_eq!(app.accepted_versions(), vec![1]);
}

#[tokio::test]
async fn server_errors_then_success_are_logged_with_every_status_code() {
    let (url, app) = scripted().await;
    app.then(500, None).then(502, None).then(504, None);
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let event = store_version(&h, "7", 1, "Ada").await;
    dispatch(&h.engine, &event).await.unwrap();
    while queue.waiting() > 0 {
        run_due(&h, &queue).await;
    }
    let log = h
        .store
        .list_deliveries(&h.dir, &DeliveryQuery::default())
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!(log[0].attempts, 4);
    assert_eq!(log[0].status_codes, vec![500, 502, 504, 204]);
    assert_eq!(app.accepted_versions(), vec![1]);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let (url, app) = scripted().await;
    app.then_hang(Duration::from_secs(2));
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let event = store_version(&h, "7", 1, "Ada").await;
    let report = dispatch(&h.engine, &event).await.unwrap();
    let TargetOutcome::Scheduled { reason, .. } = &report.targets[0].1 else {
        panic!("expected a scheduled retry: {report:?}");
    };
    assert!(reason.contains("timed out"), "{reason}");
    let outcomes = run_due(&h, &queue).await;
    assert!(matches!(
        outcomes[..],
        [RetryOutcome::Attempted {
            outcome: TargetOutcome::Delivered { .. }
        }]
    ));
}

#[tokio::test]
async fn a_410_disables_the_target_and_publishes_an_event() {
    let (url, app) = scripted().await;
    app.then(410, None);
    let (mut h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let event = store_version(&h, "7", 1, "Ada").await;
    h.drain();
    let report = dispatch(&h.engine, &event).await.unwrap();
    assert!(matches!(
        report.targets[0].1,
        TargetOutcome::Failed {
            retryable: false,
            ..
        }
    ));
    assert_eq!(queue.waiting(), 0, "a 410 is not retried");
    let dir = h.store.get_directory(&h.dir).await.unwrap().unwrap();
    assert!(!dir.targets[0].enabled);
    assert_eq!(dir.version, 2, "written conditionally on version 1");
    let published = h.drain();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_type, EventType::DirectoryTargetDisabled);
    assert_eq!(published[0].data["targetId"], "app");

    let later = store_version(&h, "7", 2, "Ada L.").await;
    assert!(dispatch(&h.engine, &later)
        .await
        .unwrap()
        .targets
        .is_empty());
    assert_eq!(app.requests(), 1);
}

#[tokio::test]
async fn a_target_failing_every_attempt_is_dead_lettered_after_ten_retries_over_72_hours() {
    let (url, app) = scripted().await;
    for _ in 0..11 {
        app.then(503, None);
    }
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let event = store_version(&h, "7", 1, "Ada").await;
    dispatch(&h.engine, &event).await.unwrap();
    let mut last = None;
    while queue.waiting() > 0 {
        last = run_due(&h, &queue).await.pop();
    }
    assert_eq!(app.requests(), 11, "the first attempt and ten retries");
    assert!(h.clock_now() - common::now() >= time::Duration::hours(72));
    assert!(
        matches!(
            &last,
            Some(RetryOutcome::Attempted {
                outcome: TargetOutcome::Failed {
                    retryable: false,
                    ..
                }
            })
        ),
        "{last:?}"
    );
    let dead = queue.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].task.event.id, event.id);
    let log = h
        .store
        .list_deliveries(
            &h.dir,
            &DeliveryQuery {
                status: Some(DeliveryStatus::DeadLettered),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].attempts, 11);

    // Re-driven once the target is fixed: it gets the current state as soon as the
    // breaker (opened by the failures) lets a probe through.
    assert_eq!(
        redrive_dead_letters(&h.engine, 10, None)
            .await
            .unwrap()
            .values()
            .sum::<usize>(),
        1
    );
    assert!(queue.dead_letters().is_empty());
    while queue.waiting() > 0 {
        run_due(&h, &queue).await;
    }
    assert_eq!(app.accepted_versions(), vec![1]);
}

#[tokio::test]
async fn the_circuit_breaker_stops_calling_a_target_that_fails_everything() {
    let (url, app) = scripted().await;
    for _ in 0..20 {
        app.then(503, None);
    }
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    for emp in 1..=5 {
        let e = store_version(&h, &emp.to_string(), 1, "Ada").await;
        dispatch(&h.engine, &e).await.unwrap();
    }
    assert_eq!(app.requests(), 5);
    let breaker = h
        .store
        .get_breaker(&h.dir, &domain::TargetId::parse("app").unwrap())
        .await
        .unwrap();
    assert!(breaker.is_open(h.clock_now()));

    let sixth = store_version(&h, "6", 1, "Ada").await;
    let report = dispatch(&h.engine, &sixth).await.unwrap();
    let TargetOutcome::Scheduled { reason, .. } = &report.targets[0].1 else {
        panic!("expected a scheduled retry: {report:?}");
    };
    assert!(reason.contains("circuit breaker"), "{reason}");
    assert_eq!(app.requests(), 5, "no call while the breaker is open");
    assert_eq!(queue.waiting(), 6);
    let log = h
        .store
        .get_delivery(
            &h.dir,
            &domain::TargetId::parse("app").unwrap(),
            &sixth.object_id,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.status, DeliveryStatus::Retrying);
    assert_eq!(log.attempts, 0, "no attempt was made");
    assert!(log.next_attempt_at.is_some());
}

#[tokio::test]
async fn duplicated_and_reordered_events_never_deliver_older_state_after_newer() {
    let (url, app) = scripted().await;
    let (h, _queue) = with_retries(vec![app_target("app", &url)]).await;
    let v1 = store_version(&h, "7", 1, "Ada").await;
    let v2 = store_version(&h, "7", 2, "Ada L.").await;
    // v2 arrives first, then v1 late, then both again.
    for e in [&v2, &v1, &v2, &v1] {
        dispatch(&h.engine, e).await.unwrap();
    }
    assert_eq!(
        app.accepted_versions(),
        vec![2],
        "one 2xx for the newest state, nothing older after it"
    );
}

#[tokio::test]
async fn a_repush_sends_the_current_state_even_when_the_ledger_has_it() {
    let (url, app) = scripted().await;
    let (h, _queue) = with_retries(vec![app_target("app", &url)]).await;
    let v1 = store_version(&h, "7", 1, "Ada").await;
    dispatch(&h.engine, &v1).await.unwrap();
    store_version(&h, "8", 1, "Grace").await;
    let out = repush(
        &h.engine,
        &h.dir,
        &domain::TargetId::parse("app").unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|(_, o)| matches!(o, TargetOutcome::Delivered { .. })));
    assert_eq!(app.accepted_versions(), vec![1, 1, 1]);
    let one = repush(
        &h.engine,
        &h.dir,
        &domain::TargetId::parse("app").unwrap(),
        Some(&EmployeeId::parse("8").unwrap()),
    )
    .await
    .unwrap();
    assert_eq!(one.len(), 1);
}

#[tokio::test]
async fn a_queued_repush_is_delivered_by_the_retry_consumer_whatever_the_ledger_says() {
    let (url, app) = scripted().await;
    let (h, queue) = with_retries(vec![app_target("app", &url)]).await;
    let v1 = store_version(&h, "7", 1, "Ada").await;
    dispatch(&h.engine, &v1).await.unwrap();
    store_version(&h, "8", 1, "Grace").await;
    let target = domain::TargetId::parse("app").unwrap();
    let queued = sync_engine::deliver::replay::queue_repush(&h.engine, &h.dir, &target)
        .await
        .unwrap();
    assert_eq!(queued, 2);
    assert_eq!(app.accepted_versions(), vec![1], "nothing sent yet");
    let outcomes = run_due(&h, &queue).await;
    assert_eq!(outcomes.len(), 2);
    assert!(outcomes.iter().all(|o| matches!(
        o,
        RetryOutcome::Attempted {
            outcome: TargetOutcome::Delivered { .. }
        }
    )));
    assert_eq!(
        app.accepted_versions(),
        vec![1, 1, 1],
        "Ada again although the ledger had her version, and Grace"
    );
}

#[tokio::test]
async fn without_a_retry_queue_a_delivery_is_refused_before_anything_is_sent() {
    let (url, app) = scripted().await;
    app.then(503, None);
    let mut h = harness("k", None, vec![app_target("app", &url)]).await;
    h.engine.retry_queue = None;
    let event = store_version(&h, "7", 1, "Ada").await;
    assert!(matches!(
        dispatch(&h.engine, &event).await,
        Err(sync_engine::EngineError::MissingCapability(_))
    ));
    assert_eq!(app.requests(), 0);
}

#[tokio::test]
async fn a_user_deleted_before_a_gated_target_ever_got_it_is_not_sent_there() {
    let (url, app) = scripted().await;
    let mut gated = app_target("lms", &url);
    gated
        .filter
        .field_in
        .insert("jobTitle".into(), vec!["Trainer".into()]);
    let (h, _queue) = with_retries(vec![gated]).await;
    // Employee 7 is never a trainer: deleted, it must not reach the gated target.
    let live = store_version(&h, "7", 1, "Ada").await;
    dispatch(&h.engine, &live).await.unwrap();
    let e = EmployeeId::parse("7").unwrap();
    let mut gone = h.store.get_user(&h.dir, &e).await.unwrap().unwrap();
    let before = gone.clone();
    gone.state = UserState::Deleted;
    gone.version = 2;
    gone.refresh_fingerprint();
    let deleted = domain::ChangeEvent::for_user_write(Some(&before), &gone, common::now());
    h.store
        .write_user(&UserWrite {
            user: gone,
            expected_version: Some(1),
            events: vec![],
        })
        .await
        .unwrap();
    let report = dispatch(&h.engine, &deleted).await.unwrap();
    assert!(
        matches!(&report.targets[0].1, TargetOutcome::Skipped { reason } if reason.contains("jobTitle")),
        "{report:?}"
    );
    assert_eq!(app.requests(), 0);
}
