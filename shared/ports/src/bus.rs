//! Publishing change events: to the dispatcher's change-notice queue (SQS FIFO on AWS,
//! SQLite locally) and to the customers' event bus (EventBridge). [`TeeBus`] joins the
//! two so the outbox releases an event only once both hold it.

use async_trait::async_trait;
use domain::{ChangeEvent, EventId};

/// The bus could not be reached at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// A transport or service failure; the events stay in the outbox for the next run.
    #[error("event bus unavailable: {reason}")]
    Unavailable {
        /// What failed (no event content).
        reason: String,
    },
}

impl BusError {
    /// Every bus failure is worth retrying: the outbox keeps the events.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Per-event result of a publish: the bus may accept some entries of a batch and refuse
/// others, and callers must not treat a partly failed batch as published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Events the bus accepted.
    pub published: Vec<EventId>,
    /// Events it refused for now (throttled, unavailable), with the bus's reason: a
    /// later publish may succeed, so they stay in the outbox.
    pub failed: Vec<(EventId, String)>,
    /// Events it refused for good (too large, malformed, not authorised), with the
    /// reason: publishing them again cannot help, so the outbox quarantines them and
    /// the directory's later events go on.
    pub rejected: Vec<(EventId, String)>,
}

impl PublishOutcome {
    /// True when every event was accepted.
    pub fn all_published(&self) -> bool {
        self.failed.is_empty() && self.rejected.is_empty()
    }
}

/// Where change events are published.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes the events, batching as the bus requires, and reports each one.
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError>;
}

/// Publishes to two buses: `first` (the dispatcher's change-notice queue), then, of what
/// `first` accepted, `second` (the customers' bus). An event counts as published only
/// when both accepted it, refused for now when either did, and rejected when either
/// rejected it for good; an event `first` did not accept is not offered to `second`,
/// so the two never disagree about an event the outbox still holds.
///
/// A retry after `first` accepted and `second` refused sends the event to `first` again:
/// event ids are stable and the dispatcher's version ledger makes that harmless.
pub struct TeeBus<A, B> {
    first: A,
    second: B,
}

impl<A, B> TeeBus<A, B> {
    /// Joins `first` and `second`.
    pub fn new(first: A, second: B) -> Self {
        Self { first, second }
    }
}

#[async_trait]
impl<A: EventBus, B: EventBus> EventBus for TeeBus<A, B> {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        let first = self.first.publish(events).await?;
        let accepted: std::collections::HashSet<&EventId> = first.published.iter().collect();
        let onward: Vec<ChangeEvent> = events
            .iter()
            .filter(|e| accepted.contains(&e.id))
            .cloned()
            .collect();
        let second = if onward.is_empty() {
            PublishOutcome::default()
        } else {
            match self.second.publish(&onward).await {
                Ok(out) => out,
                Err(BusError::Unavailable { reason }) => PublishOutcome {
                    failed: onward
                        .iter()
                        .map(|e| (e.id.clone(), reason.clone()))
                        .collect(),
                    ..PublishOutcome::default()
                },
            }
        };
        Ok(PublishOutcome {
            published: second.published,
            failed: first.failed.into_iter().chain(second.failed).collect(),
            rejected: first.rejected.into_iter().chain(second.rejected).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EventType};
    use std::sync::Mutex;

    /// A bus that accepts, refuses or rejects by version, and remembers what it got.
    #[derive(Default)]
    struct Scripted {
        refuse: Vec<u64>,
        reject: Vec<u64>,
        down: bool,
        got: Mutex<Vec<u64>>,
    }

    #[async_trait]
    impl EventBus for Scripted {
        async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
            if self.down {
                return Err(BusError::Unavailable {
                    reason: "down".into(),
                });
            }
            let mut out = PublishOutcome::default();
            for e in events {
                self.got.lock().unwrap().push(e.version);
                if self.refuse.contains(&e.version) {
                    out.failed.push((e.id.clone(), "throttled".into()));
                } else if self.reject.contains(&e.version) {
                    out.rejected.push((e.id.clone(), "too large".into()));
                } else {
                    out.published.push(e.id.clone());
                }
            }
            Ok(out)
        }
    }

    fn ev(v: u64) -> ChangeEvent {
        ChangeEvent::new(
            EventType::UserUpdated,
            DirectoryId::parse("d").unwrap(),
            "usr_1",
            v,
            time::OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({}),
        )
    }

    #[tokio::test]
    async fn an_event_is_published_only_when_both_buses_accept_it() {
        let first = Scripted {
            refuse: vec![2],
            reject: vec![3],
            ..Scripted::default()
        };
        let second = Scripted {
            reject: vec![4],
            ..Scripted::default()
        };
        let tee = TeeBus::new(first, second);
        let out = tee.publish(&[ev(1), ev(2), ev(3), ev(4)]).await.unwrap();
        assert_eq!(out.published, vec![ev(1).id]);
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].0, ev(2).id);
        let rejected: Vec<_> = out.rejected.iter().map(|(id, _)| id.clone()).collect();
        assert_eq!(rejected, vec![ev(3).id, ev(4).id]);
        assert_eq!(
            *tee.second.got.lock().unwrap(),
            vec![1, 4],
            "only what the first bus took goes on"
        );
    }

    #[tokio::test]
    async fn a_second_bus_that_is_down_leaves_the_events_refused_for_now() {
        let tee = TeeBus::new(
            Scripted::default(),
            Scripted {
                down: true,
                ..Scripted::default()
            },
        );
        let out = tee.publish(&[ev(1)]).await.unwrap();
        assert!(out.published.is_empty());
        assert_eq!(out.failed.len(), 1);
        assert!(!out.all_published());
    }
}
