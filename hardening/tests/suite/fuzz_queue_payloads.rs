//! Fuzzing of the functions' own inputs: the dispatcher's SQS messages (the EventBridge
//! envelope of a change event, a retry-queue envelope, near-valid variants of both with
//! random parts replaced, arbitrary JSON and arbitrary text) and the poller's Scheduler
//! payloads (`{"directoryId", "mode"}`, `{"sweep": true}` and anything else).
//!
//! Properties: nothing panics; the dispatcher answers every batch with a failure list
//! naming only messages of the batch; a message that can never be handled (unreadable,
//! or a change of a directory the store does not hold) is never retried in place but
//! set aside, one dead letter each, and a retry of a vanished directory is dropped; the
//! poller acknowledges or refuses each payload with an error, and refuses every payload
//! that is not one of its shapes.
//!
//! 256 cases by default; `PROPTEST_CASES=100000` for a long run.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use domain::{ChangeEvent, DirectoryId, EventType, TargetId};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_runtime::{Context, LambdaEvent};
use ports::{FixedClock, RetryEnvelope, RetryTask};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use sync_engine::Engine;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_420_800).unwrap()
}

fn engine() -> Engine {
    let (bus, _rx) = InProcessBus::new();
    let clock = Arc::new(FixedClock::new(now()));
    Engine::new(
        Arc::new(SqliteStore::in_memory()),
        Arc::new(FileSecrets::env_only()),
        Arc::new(bus),
        clock.clone(),
    )
    .with_retry_queue(Arc::new(embedded_adapters::InProcessRetryQueue::new(clock)))
}

fn change_event() -> ChangeEvent {
    ChangeEvent::new(
        EventType::UserUpdated,
        DirectoryId::parse("acme").unwrap(),
        "usr_1",
        3,
        now(),
        json!({"employeeId": "42", "firstName": "Ada"}),
    )
}

/// The EventBridge envelope earlier releases routed to the change queue (still read).
fn eventbridge_body() -> Value {
    json!({
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "user.updated",
        "source": "bamboohr-sync",
        "account": "111122223333",
        "time": "2026-11-23T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": serde_json::to_value(change_event()).unwrap()
    })
}

/// The body the retry queue carries.
fn retry_body() -> Value {
    serde_json::to_value(RetryEnvelope {
        retry_task: RetryTask {
            target_id: TargetId::parse("app").unwrap(),
            event: change_event(),
            retries: 2,
            due_at: now(),
            first_failed_at: now(),
            last_error: "HTTP 503".into(),
            force: false,
        },
    })
    .unwrap()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "\\PC{0,10}".prop_map(Value::String),
        Just(json!("acme")),
        Just(json!("full")),
        Just(json!("targeted")),
        Just(json!("user.deleted")),
        Just(json!("9999-12-31T23:59:59Z")),
        Just(json!("2026-11-23T08:00:00+14:00")),
        Just(json!(u64::MAX)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    proptest::sample::select(vec![
                        "directoryId",
                        "mode",
                        "sweep",
                        "detail",
                        "retryTask",
                        "type",
                        "id",
                        "version",
                        "objectId",
                    ])
                    .prop_map(str::to_string),
                    "[a-zA-Z-]{0,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn near(template: Value) -> impl Strategy<Value = Value> {
    vec((any::<usize>(), json_value()), 0..3).prop_map(move |changes| {
        let mut doc = template.clone();
        for (at, with) in changes {
            let all = hardening::json_pointers(&doc);
            if let Some(slot) = doc.pointer_mut(&all[at % all.len()]) {
                *slot = with;
            }
        }
        doc
    })
}

fn sqs_body() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        1 => "\\PC{0,64}".prop_map(Some),
        1 => json_value().prop_map(|v| Some(v.to_string())),
        3 => near(eventbridge_body()).prop_map(|v| Some(v.to_string())),
        3 => near(retry_body()).prop_map(|v| Some(v.to_string())),
    ]
}

#[test]
fn arbitrary_sqs_batches_are_answered_with_a_consistent_failure_list() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = engine();
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&vec(sqs_body(), 1..6), |bodies| {
            let mut event = SqsEvent::default();
            for (i, body) in bodies.iter().enumerate() {
                let mut m = SqsMessage::default();
                m.message_id = Some(format!("m{i}"));
                m.body = body.clone();
                event.records.push(m);
            }
            // What each message parses to decides what the batch answer must hold.
            let parsed: Vec<_> = event
                .records
                .iter()
                .map(dispatcher::parse_message)
                .collect();
            let queue = engine.retry_queue().unwrap().clone();
            let depth_before = rt.block_on(queue.dead_letter_depth()).unwrap();
            let response = rt
                .block_on(dispatcher::handler(
                    &engine,
                    LambdaEvent::new(event, Context::default()),
                ))
                .map_err(|e| TestCaseError::fail(format!("handler failed: {e}")))?;
            let failed: Vec<String> = response
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            // The store is empty: every change is of an unknown directory.
            let never_handled = parsed
                .iter()
                .filter(|p| matches!(p, Err(_) | Ok(dispatcher::Message::Change(_))))
                .count() as u64;
            for p in &parsed {
                if let Err(e) = p {
                    prop_assert!(!e.is_retryable());
                }
                if let Ok(dispatcher::Message::Change(ev)) = p {
                    prop_assert_eq!(ev.schema_version, change_event().schema_version);
                }
            }
            prop_assert!(
                failed.is_empty(),
                "nothing here is worth retrying in place: {:?}",
                failed
            );
            let depth_after = rt.block_on(queue.dead_letter_depth()).unwrap();
            prop_assert_eq!(
                depth_after - depth_before,
                never_handled,
                "each message that can never be handled is set aside once"
            );
            for id in &failed {
                prop_assert!(
                    (0..bodies.len()).any(|i| *id == format!("m{i}")),
                    "{id} is not in the batch"
                );
            }
            Ok(())
        })
        .unwrap();
}

fn poller_payload() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => json_value(),
        3 => (leaf(), leaf(), any::<bool>()).prop_map(|(dir, mode, with_mode)| {
            if with_mode {
                json!({"directoryId": dir, "mode": mode})
            } else {
                json!({"directoryId": dir})
            }
        }),
        1 => near(json!({"directoryId": "acme", "mode": "incremental"})),
        1 => near(json!({"sweep": true})),
    ]
}

/// The shapes the poller documents.
fn documented(payload: &Value) -> bool {
    let Some(obj) = payload.as_object() else {
        return false;
    };
    if obj.contains_key("sweep") {
        return obj.len() == 1 && obj["sweep"] == Value::Bool(true);
    }
    // A sync request is strict: no fields beyond these two.
    if obj.keys().any(|k| k != "directoryId" && k != "mode") {
        return false;
    }
    let dir_ok = obj
        .get("directoryId")
        .and_then(Value::as_str)
        .is_some_and(|d| DirectoryId::parse(d).is_ok());
    let mode_ok = match obj.get("mode") {
        None => true,
        Some(m) => m
            .as_str()
            .is_some_and(|m| ["incremental", "full", "targeted"].contains(&m)),
    };
    dir_ok && mode_ok
}

#[test]
fn arbitrary_poller_payloads_are_acknowledged_or_refused_without_panicking() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let poller = poller::Poller::new(engine());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&poller_payload(), |payload| {
            let ok_shape = documented(&payload);
            let result = rt.block_on(poller::handler(
                &poller,
                LambdaEvent::new(payload.clone(), Context::default()),
            ));
            match result {
                // No directory exists: a sync request is acknowledged without a run.
                Ok(r) => {
                    prop_assert!(ok_shape, "{payload} was accepted");
                    prop_assert!(r.run.is_none());
                }
                Err(e) => {
                    prop_assert!(!ok_shape, "{payload} was refused: {e}");
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}
