//! An in-process bus: published events go to a channel the local dispatcher drains.
//! It can be told to fail, so tests can exercise the outbox.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use domain::ChangeEvent;
use ports::{BusError, EventBus, PublishOutcome};
use tokio::sync::mpsc;

/// The in-process bus.
pub struct InProcessBus {
    tx: mpsc::UnboundedSender<ChangeEvent>,
    failing: AtomicBool,
}

impl InProcessBus {
    /// A bus and the receiving end of its channel.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ChangeEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                tx,
                failing: AtomicBool::new(false),
            },
            rx,
        )
    }

    /// While failing, every publish returns `BusError::Unavailable`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

#[async_trait]
impl EventBus for InProcessBus {
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable {
                reason: "in-process bus set to fail".into(),
            });
        }
        let mut outcome = PublishOutcome::default();
        for e in events {
            match self.tx.send(e.clone()) {
                Ok(()) => outcome.published.push(e.id.clone()),
                Err(_) => outcome
                    .failed
                    .push((e.id.clone(), "no dispatcher is listening".into())),
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EventType};

    fn ev(n: u64) -> ChangeEvent {
        ChangeEvent::new(
            EventType::UserCreated,
            DirectoryId::parse("d").unwrap(),
            "usr_1",
            n,
            time::OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({}),
        )
    }

    #[tokio::test]
    async fn published_events_arrive_in_order() {
        let (bus, mut rx) = InProcessBus::new();
        let out = bus.publish(&[ev(1), ev(2)]).await.unwrap();
        assert!(out.all_published());
        assert_eq!(rx.recv().await.unwrap().version, 1);
        assert_eq!(rx.recv().await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn a_failing_bus_refuses_the_whole_publish() {
        let (bus, _rx) = InProcessBus::new();
        bus.set_failing(true);
        assert!(bus.publish(&[ev(1)]).await.is_err());
    }

    #[tokio::test]
    async fn events_without_a_listener_are_reported_failed() {
        let (bus, rx) = InProcessBus::new();
        drop(rx);
        let out = bus.publish(&[ev(1)]).await.unwrap();
        assert_eq!(out.failed.len(), 1);
    }
}
