//! An in-process retry queue and customer-bus stand-in for the local stack and tests:
//! scheduled retries wait in a list until due, dead letters in another, and events
//! re-published to "customer buses" are kept per bus ARN.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use domain::ChangeEvent;
use ports::{
    BusError, DeadLetter, ForeignBus, ForeignBusError, ReceivedDeadLetter, RetryQueue, RetryTask,
};
use time::OffsetDateTime;

#[derive(Default)]
struct Queues {
    /// (visible at, task), in scheduling order.
    waiting: Vec<(OffsetDateTime, RetryTask)>,
    /// receipt -> dead letter
    dead: BTreeMap<u64, DeadLetter>,
    next_receipt: u64,
}

/// The in-process retry queue. Delays are measured against the `now` the caller
/// passes to [`InProcessRetryQueue::take_visible`], so tests can drive time.
pub struct InProcessRetryQueue {
    queues: Mutex<Queues>,
    clock: std::sync::Arc<dyn ports::Clock>,
}

impl InProcessRetryQueue {
    /// An empty queue whose delays start at `clock`'s now.
    pub fn new(clock: std::sync::Arc<dyn ports::Clock>) -> Self {
        Self {
            queues: Mutex::new(Queues::default()),
            clock,
        }
    }

    /// Removes and returns every task visible at `now`, in scheduling order.
    pub fn take_visible(&self, now: OffsetDateTime) -> Vec<RetryTask> {
        let mut q = self.queues.lock().expect("retry queue lock");
        let (visible, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut q.waiting)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        q.waiting = waiting;
        visible.into_iter().map(|(_, t)| t).collect()
    }

    /// When the earliest waiting task becomes visible.
    pub fn next_visible_at(&self) -> Option<OffsetDateTime> {
        let q = self.queues.lock().expect("retry queue lock");
        q.waiting.iter().map(|(at, _)| *at).min()
    }

    /// How many tasks wait.
    pub fn waiting(&self) -> usize {
        self.queues.lock().expect("retry queue lock").waiting.len()
    }

    /// The dead letters, oldest first (they stay until acknowledged).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        let q = self.queues.lock().expect("retry queue lock");
        q.dead.values().cloned().collect()
    }
}

#[async_trait]
impl RetryQueue for InProcessRetryQueue {
    async fn schedule(&self, task: &RetryTask, delay: Duration) -> Result<(), BusError> {
        let at = self.clock.now() + delay;
        let mut q = self.queues.lock().expect("retry queue lock");
        q.waiting.push((at, task.clone()));
        Ok(())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BusError> {
        let mut q = self.queues.lock().expect("retry queue lock");
        q.next_receipt += 1;
        let receipt = q.next_receipt;
        q.dead.insert(receipt, letter.clone());
        Ok(())
    }

    async fn receive_dead_letters(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        let q = self.queues.lock().expect("retry queue lock");
        Ok(q.dead
            .iter()
            .take(max)
            .map(|(receipt, letter)| ReceivedDeadLetter {
                letter: letter.clone(),
                receipt: receipt.to_string(),
            })
            .collect())
    }

    async fn ack_dead_letters(&self, receipts: &[String]) -> Result<(), BusError> {
        let mut q = self.queues.lock().expect("retry queue lock");
        for r in receipts {
            if let Ok(r) = r.parse::<u64>() {
                q.dead.remove(&r);
            }
        }
        Ok(())
    }
}

/// Customer buses of the local stack: each re-published event is kept under its bus
/// ARN, where the `dev` command and tests read them.
#[derive(Default)]
pub struct InProcessForeignBus {
    buses: Mutex<BTreeMap<String, Vec<ChangeEvent>>>,
}

impl InProcessForeignBus {
    /// Events put on `bus_arn`, in order.
    pub fn events(&self, bus_arn: &str) -> Vec<ChangeEvent> {
        self.buses
            .lock()
            .expect("foreign bus lock")
            .get(bus_arn)
            .cloned()
            .unwrap_or_default()
    }
}

#[async_trait]
impl ForeignBus for InProcessForeignBus {
    async fn put(&self, bus_arn: &str, event: &ChangeEvent) -> Result<(), ForeignBusError> {
        self.buses
            .lock()
            .expect("foreign bus lock")
            .entry(bus_arn.to_string())
            .or_default()
            .push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ports::{Clock, SystemClock};

    use super::*;

    #[tokio::test]
    async fn the_in_process_retry_queue_passes_the_dead_letter_contract() {
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letters_round_trip_until_acknowledged(&queue).await;
    }

    #[tokio::test]
    async fn a_scheduled_task_becomes_visible_only_after_its_delay() {
        let clock = Arc::new(ports::FixedClock::new(
            OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap(),
        ));
        let queue = InProcessRetryQueue::new(clock.clone());
        let dir = domain::DirectoryId::parse("d").unwrap();
        let task = RetryTask {
            target_id: domain::TargetId::parse("t").unwrap(),
            event: ChangeEvent::new(
                domain::EventType::UserUpdated,
                dir,
                "usr_1",
                1,
                clock.now(),
                serde_json::json!({}),
            ),
            retries: 0,
            due_at: clock.now(),
            first_failed_at: clock.now(),
            last_error: "HTTP 503".into(),
        };
        queue
            .schedule(&task, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(queue.take_visible(clock.now()).is_empty());
        let later = clock.now() + Duration::from_secs(30);
        assert_eq!(queue.next_visible_at(), Some(later));
        assert_eq!(queue.take_visible(later), vec![task]);
        assert_eq!(queue.waiting(), 0);
    }
}
