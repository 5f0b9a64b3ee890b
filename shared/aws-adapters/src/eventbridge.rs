//! [`EventBridgeBus`]: `ports::EventBus` on an EventBridge bus.
//!
//! Each change event becomes one PutEvents entry: `Source` [`EVENT_SOURCE`],
//! `DetailType` the event type (`user.created`), `Detail` the `ChangeEvent` JSON. The
//! stack's bus is for the customers' own consumers (their rules, archives, replays);
//! the dispatcher is fed by the change queue directly (`SqsChangeNotices`), so nothing
//! here decides delivery order.
//!
//! Entries are sent at most 10 per call and at most [`MAX_ENTRY_BYTES`] per call (both
//! EventBridge limits, sized as EventBridge counts them: Source + DetailType + Detail
//! bytes). An event whose own entry is larger is reported failed without being sent.
//! Entries EventBridge refuses individually are retried (only those, up to
//! [`ENTRY_RETRIES`] times, with jittered backoff) unless their error code says a retry
//! cannot help; what still fails is reported per event in `PublishOutcome::failed`, so
//! the outbox keeps it.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use domain::{ChangeEvent, EventId};
use ports::{BusError, EventBus, PublishOutcome};

use crate::clients;

/// `Source` of every event this project publishes; the rules match on it.
pub const EVENT_SOURCE: &str = "bamboohr-sync";

/// EventBridge's limit on one entry, and on the entries of one PutEvents call together.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// Entries per PutEvents call.
const MAX_ENTRIES_PER_CALL: usize = 10;

/// Extra attempts for entries EventBridge refused individually.
pub const ENTRY_RETRIES: u32 = 3;

/// Per-entry error codes a retry within the call cannot fix.
const PERMANENT_ENTRY_ERRORS: &[&str] = &[
    "MalformedDetail",
    "InvalidArgument",
    "ValidationException",
    "AccessDeniedException",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
];

/// Of those, the codes that say the event itself is at fault: no later publish can
/// succeed, so the event is reported rejected (and quarantined). A refusal of the
/// caller (access denied) is an operator's to fix, so it stays refused for now.
const EVENT_AT_FAULT_ERRORS: &[&str] =
    &["MalformedDetail", "InvalidArgument", "ValidationException"];

/// The `Detail` of an event: the event itself.
fn detail(event: &ChangeEvent) -> Result<String, String> {
    serde_json::to_string(event).map_err(|e| format!("cannot serialize: {e}"))
}

/// The entry size as EventBridge counts it (no Time, no Resources are sent).
fn entry_size(detail_type: &str, detail: &str) -> usize {
    EVENT_SOURCE.len() + detail_type.len() + detail.len()
}

/// One event ready to send.
struct Prepared<'a> {
    id: &'a EventId,
    entry: PutEventsRequestEntry,
    size: usize,
}

/// Packs entries in order into calls of at most 10 entries and [`MAX_ENTRY_BYTES`].
fn pack(prepared: Vec<Prepared<'_>>) -> Vec<Vec<Prepared<'_>>> {
    let mut batches: Vec<Vec<Prepared<'_>>> = Vec::new();
    let mut bytes = 0;
    for p in prepared {
        let fits = batches
            .last()
            .is_some_and(|b| b.len() < MAX_ENTRIES_PER_CALL && bytes + p.size <= MAX_ENTRY_BYTES);
        if !fits {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += p.size;
        batches.last_mut().expect("a batch was just pushed").push(p);
    }
    batches
}

fn call_reason<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    crate::clients::sdk_reason("PutEvents", err)
}

/// Publishes change events to one EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
}

impl EventBridgeBus {
    /// A bus publisher for `bus_name` (name or ARN), with [`clients`]'s policy.
    pub fn new(sdk: &SdkConfig, bus_name: impl Into<String>) -> Self {
        Self::from_client(clients::eventbridge(sdk), bus_name)
    }

    /// A bus publisher using an existing client.
    pub fn from_client(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// The bus name or ARN events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    /// Sends one packed batch, retrying refused entries. `Err` only when the very first
    /// call fails as a whole (nothing of the batch is known to be published).
    async fn send_batch(
        &self,
        batch: Vec<Prepared<'_>>,
        outcome: &mut PublishOutcome,
    ) -> Result<(), String> {
        let mut pending = batch;
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt > 0 {
                let wait = retry_timing::jittered(
                    attempt,
                    Duration::from_millis(100),
                    Duration::from_secs(2),
                );
                tokio::time::sleep(wait).await;
            }
            let entries = pending.iter().map(|p| p.entry.clone()).collect();
            let out = match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if attempt == 0 => return Err(call_reason(&e)),
                Err(e) => {
                    let reason = call_reason(&e);
                    outcome
                        .failed
                        .extend(pending.iter().map(|p| (p.id.clone(), reason.clone())));
                    return Ok(());
                }
            };
            let results = out.entries();
            let mut retry = Vec::new();
            for (i, p) in pending.into_iter().enumerate() {
                let result = results.get(i);
                match result.and_then(|r| r.error_code()) {
                    None if result.and_then(|r| r.event_id()).is_some() => {
                        outcome.published.push(p.id.clone())
                    }
                    None => outcome.failed.push((
                        p.id.clone(),
                        "EventBridge returned no result for the entry".into(),
                    )),
                    Some(code)
                        if attempt < ENTRY_RETRIES && !PERMANENT_ENTRY_ERRORS.contains(&code) =>
                    {
                        retry.push(p)
                    }
                    Some(code) => {
                        let message = result.and_then(|r| r.error_message()).unwrap_or("");
                        let refusal = (p.id.clone(), format!("{code}: {message}"));
                        if EVENT_AT_FAULT_ERRORS.contains(&code) {
                            outcome.rejected.push(refusal);
                        } else {
                            outcome.failed.push(refusal);
                        }
                    }
                }
            }
            if !retry.is_empty() {
                tracing::debug!(bus = %self.bus_name, count = retry.len(), attempt, "retrying refused entries");
            }
            pending = retry;
            attempt += 1;
        }
        Ok(())
    }
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        let mut outcome = PublishOutcome::default();
        let mut prepared = Vec::with_capacity(events.len());
        for event in events {
            let detail_type = event.event_type.as_str();
            let detail = match detail(event) {
                Ok(d) => d,
                Err(reason) => {
                    outcome.rejected.push((event.id.clone(), reason));
                    continue;
                }
            };
            let size = entry_size(detail_type, &detail);
            if size > MAX_ENTRY_BYTES {
                tracing::warn!(
                    bus = %self.bus_name,
                    event = %event.id,
                    size,
                    limit = MAX_ENTRY_BYTES,
                    "event too large for EventBridge; not sent"
                );
                outcome.rejected.push((
                    event.id.clone(),
                    format!(
                        "EntryTooLarge: the entry is {size} bytes; EventBridge accepts at most {MAX_ENTRY_BYTES}"
                    ),
                ));
                continue;
            }
            let entry = PutEventsRequestEntry::builder()
                .source(EVENT_SOURCE)
                .detail_type(detail_type)
                .detail(detail)
                .event_bus_name(&self.bus_name)
                .build();
            prepared.push(Prepared {
                id: &event.id,
                entry,
                size,
            });
        }

        for batch in pack(prepared) {
            if let Err(reason) = self.send_batch(batch, &mut outcome).await {
                tracing::warn!(bus = %self.bus_name, %reason, published = outcome.published.len(), "publish failed");
                if outcome.published.is_empty() {
                    return Err(BusError::Unavailable { reason });
                }
                // Part went out: report the rest as failed rather than lose what is known.
                // The failing batch was consumed by send_batch; its events are among
                // those not yet accounted for.
                let accounted: std::collections::HashSet<&EventId> = outcome
                    .published
                    .iter()
                    .chain(outcome.failed.iter().map(|(id, _)| id))
                    .chain(outcome.rejected.iter().map(|(id, _)| id))
                    .collect();
                let rest: Vec<(EventId, String)> = events
                    .iter()
                    .filter(|e| !accounted.contains(&e.id))
                    .map(|e| (e.id.clone(), reason.clone()))
                    .collect();
                outcome.failed.extend(rest);
                break;
            }
        }

        if outcome.all_published() {
            tracing::debug!(bus = %self.bus_name, published = outcome.published.len(), "events published");
        } else {
            tracing::warn!(
                bus = %self.bus_name,
                published = outcome.published.len(),
                failed = outcome.failed.len(),
                rejected = outcome.rejected.len(),
                "some events were not published"
            );
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EventType};
    use time::OffsetDateTime;

    fn event(object: &str, data: serde_json::Value) -> ChangeEvent {
        ChangeEvent::new(
            EventType::UserUpdated,
            DirectoryId::parse("acme").unwrap(),
            object,
            1,
            OffsetDateTime::UNIX_EPOCH,
            data,
        )
    }

    #[test]
    fn the_detail_is_the_event_itself() {
        let e = event("usr_1", serde_json::json!({"k": 1}));
        let back: ChangeEvent = serde_json::from_str(&detail(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn batches_respect_the_count_and_byte_limits() {
        let ids: Vec<EventId> = (0..25)
            .map(|i| event(&format!("u{i}"), serde_json::json!({})).id)
            .collect();
        let small = |i: usize| Prepared {
            id: &ids[i],
            entry: PutEventsRequestEntry::builder().build(),
            size: 100,
        };
        let sizes: Vec<usize> = pack((0..25).map(small).collect())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [10, 10, 5]);

        let big = |i: usize| Prepared {
            id: &ids[i],
            entry: PutEventsRequestEntry::builder().build(),
            size: 100 * 1024,
        };
        let sizes: Vec<usize> = pack((0..5).map(big).collect())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [2, 2, 1]);
    }
}
