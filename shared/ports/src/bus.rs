//! Publishing change events to the event bus (EventBridge on AWS, in-process locally).

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
    /// Events it refused, with the bus's reason.
    pub failed: Vec<(EventId, String)>,
}

impl PublishOutcome {
    /// True when every event was accepted.
    pub fn all_published(&self) -> bool {
        self.failed.is_empty()
    }
}

/// Where change events are published.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes the events, batching as the bus requires, and reports each one.
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError>;
}
