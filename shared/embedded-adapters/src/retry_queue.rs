//! The local stack's retry queue (and the tests'), and its customer-bus stand-in:
//! scheduled retries wait in a list until due, dead letters in another, and events
//! re-published to "customer buses" are kept per bus ARN.
//!
//! A queue lives in memory ([`InProcessRetryQueue::new`], for tests) or is kept in a
//! JSON file as well ([`InProcessRetryQueue::open`], for the `dev` stack's data
//! directory), as SQS keeps it on AWS: failed deliveries waiting for their next attempt
//! and dead letters survive a restart of `dev`, and the one-shot CLI commands (which
//! run while `dev` is stopped) read and re-drive the dead letters: `status` counts
//! them, `replay dead-letters` puts them back among the waiting retries, which the next
//! `dev` run attempts.
//!
//! The file is rewritten whole (to a temporary file, then renamed) after every change,
//! so a crash leaves the previous or the next state, never half of one; a change the
//! file cannot take is not made in memory either, so the two never disagree. Only one
//! process has the file at a time (the CLI refuses a data directory `dev` is using).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::ChangeEvent;
use ports::{
    BusError, Clock, DeadLetter, ForeignBus, ForeignBusError, ReceivedDeadLetter, RetryQueue,
    RetryTask,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The queue's state, and the file's contents.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Queues {
    /// Tasks waiting for their attempt, in scheduling order.
    waiting: Vec<Waiting>,
    /// receipt -> dead letter; a received letter stays until acknowledged.
    dead: BTreeMap<u64, DeadLetter>,
    /// The receipt the next dead letter gets.
    next_receipt: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Waiting {
    #[serde(with = "time::serde::rfc3339")]
    visible_at: OffsetDateTime,
    task: RetryTask,
}

/// The in-process retry queue, in memory or kept in a file. Delays are measured from
/// the queue's clock and tasks taken at the `now` the caller passes to
/// [`InProcessRetryQueue::take_visible`], so tests can drive time.
pub struct InProcessRetryQueue {
    queues: Mutex<Queues>,
    clock: Arc<dyn Clock>,
    /// Where every change is written; `None` for a queue in memory only.
    file: Option<PathBuf>,
}

fn file_error(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        reason: format!("local retry queue {what}: {e}"),
    }
}

/// Writes `queues` to `path` whole: to a temporary file beside it, then renamed over it.
fn save(path: &Path, queues: &Queues) -> Result<(), BusError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let bytes = serde_json::to_vec_pretty(queues).expect("the queue serializes");
    std::fs::write(&tmp, bytes).map_err(|e| file_error("not written", e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error("not written", e))
}

impl InProcessRetryQueue {
    /// An empty queue in memory whose delays start at `clock`'s now.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            queues: Mutex::new(Queues::default()),
            clock,
            file: None,
        }
    }

    /// The queue kept in the JSON file at `path`, as it was left there (empty if there
    /// is no file yet). An unreadable file is an error rather than an empty queue:
    /// starting afresh would lose its dead letters.
    pub fn open(path: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<Self, BusError> {
        let path = path.into();
        let queues = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_error("unreadable", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Queues::default(),
            Err(e) => return Err(file_error("unreadable", e)),
        };
        Ok(Self {
            queues: Mutex::new(queues),
            clock,
            file: Some(path),
        })
    }

    fn read(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().expect("retry queue lock")
    }

    /// Applies `f`, and writes the result to the file if the queue has one. The change
    /// is made on a copy first: one the file does not take is not made at all.
    fn change<T>(&self, f: impl FnOnce(&mut Queues) -> T) -> Result<T, BusError> {
        let mut queues = self.read();
        let Some(path) = &self.file else {
            return Ok(f(&mut queues));
        };
        let mut next = queues.clone();
        let out = f(&mut next);
        save(path, &next)?;
        *queues = next;
        Ok(out)
    }

    /// Removes and returns every task visible at `now`, in scheduling order, or says
    /// why the file did not take the change (then nothing is taken).
    pub fn try_take_visible(&self, now: OffsetDateTime) -> Result<Vec<RetryTask>, BusError> {
        self.change(|q| {
            let (visible, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut q.waiting)
                .into_iter()
                .partition(|w| w.visible_at <= now);
            q.waiting = waiting;
            visible.into_iter().map(|w| w.task).collect()
        })
    }

    /// Removes and returns every task visible at `now`, in scheduling order. A queue in
    /// memory cannot fail; one whose file cannot be written takes nothing (the tasks
    /// stay waiting; [`InProcessRetryQueue::try_take_visible`] says why).
    pub fn take_visible(&self, now: OffsetDateTime) -> Vec<RetryTask> {
        self.try_take_visible(now).unwrap_or_default()
    }

    /// When the earliest waiting task becomes visible.
    pub fn next_visible_at(&self) -> Option<OffsetDateTime> {
        self.read().waiting.iter().map(|w| w.visible_at).min()
    }

    /// How many tasks wait.
    pub fn waiting(&self) -> usize {
        self.read().waiting.len()
    }

    /// The dead letters, oldest first (they stay until acknowledged).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.read().dead.values().cloned().collect()
    }
}

#[async_trait]
impl RetryQueue for InProcessRetryQueue {
    async fn schedule(&self, task: &RetryTask, delay: Duration) -> Result<(), BusError> {
        let visible_at = self.clock.now() + delay;
        self.change(|q| {
            q.waiting.push(Waiting {
                visible_at,
                task: task.clone(),
            })
        })
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BusError> {
        self.change(|q| {
            let receipt = q.next_receipt;
            q.next_receipt += 1;
            q.dead.insert(receipt, letter.clone());
        })
    }

    async fn receive_dead_letters(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        Ok(self
            .read()
            .dead
            .iter()
            .take(max)
            .map(|(receipt, letter)| ReceivedDeadLetter {
                letter: letter.clone(),
                receipt: receipt.to_string(),
            })
            .collect())
    }

    async fn ack_dead_letters(&self, receipts: &[String]) -> Result<(), BusError> {
        self.change(|q| {
            for r in receipts {
                if let Ok(r) = r.parse::<u64>() {
                    q.dead.remove(&r);
                }
            }
        })
    }

    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        Ok(self.read().dead.len() as u64)
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

    /// A retry task of `acme`'s app target that failed its last attempt.
    fn task() -> RetryTask {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        RetryTask {
            target_id: domain::TargetId::parse("app").unwrap(),
            event: ChangeEvent::new(
                domain::EventType::UserUpdated,
                domain::DirectoryId::parse("acme").unwrap(),
                "usr_1",
                2,
                now,
                serde_json::json!({}),
            ),
            retries: 10,
            due_at: now,
            first_failed_at: now,
            last_error: "503".into(),
        }
    }

    /// A file-backed queue in a fresh directory (kept alive by the returned guard).
    fn in_file() -> (InProcessRetryQueue, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            InProcessRetryQueue::open(dir.path().join("retry-queue.json"), Arc::new(SystemClock))
                .unwrap();
        (queue, dir)
    }

    #[tokio::test]
    async fn the_in_process_retry_queue_passes_the_dead_letter_contract() {
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letters_round_trip_until_acknowledged(&queue).await;
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letter_depth_counts_letters_until_acknowledged(&queue).await;
    }

    #[tokio::test]
    async fn the_file_backed_retry_queue_passes_the_dead_letter_contract() {
        let (queue, _dir) = in_file();
        ports::contract_retry::dead_letters_round_trip_until_acknowledged(&queue).await;
        let (queue, _dir) = in_file();
        ports::contract_retry::dead_letter_depth_counts_letters_until_acknowledged(&queue).await;
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

    #[tokio::test]
    async fn dead_letters_and_waiting_retries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retry-queue.json");
        let open = || InProcessRetryQueue::open(&path, Arc::new(SystemClock)).unwrap();
        let q = open();
        q.schedule(&task(), Duration::from_secs(3600))
            .await
            .unwrap();
        q.dead_letter(&DeadLetter {
            task: task(),
            reason: "11 attempts failed".into(),
        })
        .await
        .unwrap();
        drop(q);

        let q = open();
        assert_eq!(q.waiting(), 1);
        assert_eq!(q.dead_letters().len(), 1);
        assert!(q
            .try_take_visible(OffsetDateTime::now_utc())
            .unwrap()
            .is_empty());
        let letters = q.receive_dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(
            q.dead_letters().len(),
            1,
            "received letters stay until acknowledged"
        );
        q.ack_dead_letters(&[letters[0].receipt.clone()])
            .await
            .unwrap();
        drop(q);
        assert_eq!(open().dead_letters().len(), 0);
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_an_empty_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retry-queue.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(InProcessRetryQueue::open(&path, Arc::new(SystemClock)).is_err());
    }

    #[tokio::test]
    async fn a_change_the_file_does_not_take_is_not_made() {
        let dir = tempfile::tempdir().unwrap();
        // The file's directory is gone, so no write can succeed.
        let path = dir.path().join("gone").join("retry-queue.json");
        let q = InProcessRetryQueue::open(&path, Arc::new(SystemClock)).unwrap();
        assert!(q.schedule(&task(), Duration::ZERO).await.is_err());
        assert_eq!(q.waiting(), 0, "the failed schedule left nothing behind");
        assert!(q.try_take_visible(OffsetDateTime::now_utc()).is_err());
    }
}
