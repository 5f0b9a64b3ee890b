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

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use domain::ChangeEvent;
use ports::{BusError, EventBus, PublishOutcome};

use crate::batching::{send_all, EntryAnswer, Limits, Prepared};
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

/// What EventBridge's result for one entry means.
fn answer(result: &aws_sdk_eventbridge::types::PutEventsResultEntry) -> EntryAnswer {
    match result.error_code() {
        None if result.event_id().is_some() => EntryAnswer::Accepted,
        None => EntryAnswer::Failed("EventBridge returned no result for the entry".into()),
        Some(code) => {
            let reason = format!("{code}: {}", result.error_message().unwrap_or(""));
            if EVENT_AT_FAULT_ERRORS.contains(&code) {
                EntryAnswer::Rejected(reason)
            } else if PERMANENT_ENTRY_ERRORS.contains(&code) {
                EntryAnswer::Failed(reason)
            } else {
                EntryAnswer::Retryable(reason)
            }
        }
    }
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
        let limits = Limits {
            entries: MAX_ENTRIES_PER_CALL,
            bytes: MAX_ENTRY_BYTES,
            retries: ENTRY_RETRIES,
        };
        let sent = send_all(events, prepared, limits, &mut outcome, |entries| {
            let client = self.client.clone();
            async move {
                let out = client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| call_reason(&e))?;
                Ok(out.entries().iter().map(answer).collect())
            }
        })
        .await;
        if let Err(e) = &sent {
            tracing::warn!(bus = %self.bus_name, reason = %e, "publish failed");
        }
        sent?;

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
}
