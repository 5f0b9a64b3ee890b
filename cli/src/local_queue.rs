//! The local stack's retry queue, kept in the data directory (`retry-queue.json`)
//! instead of in the `dev` process's memory, as SQS keeps it on AWS: failed
//! deliveries waiting for their next attempt and dead letters survive a restart of
//! `dev`, and the one-shot commands (which run while `dev` is stopped) can read and
//! re-drive the dead letters: `status` reports their count, `replay dead-letters`
//! puts them back among the waiting retries, which the next `dev` run attempts.
//!
//! The file is rewritten whole (to a temporary file, then renamed) after every
//! change, so a crash leaves the previous or the next state, never half of one. Only
//! one process has the data directory at a time (see `stack::ensure_dev_not_running`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use ports::{BusError, DeadLetter, ReceivedDeadLetter, RetryQueue, RetryTask};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The file's name in the data directory.
pub const FILE: &str = "retry-queue.json";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct State {
    /// (visible at, task), in scheduling order.
    waiting: Vec<Waiting>,
    /// receipt -> dead letter; a received letter stays until acknowledged.
    dead: BTreeMap<u64, DeadLetter>,
    next_receipt: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Waiting {
    #[serde(with = "time::serde::rfc3339")]
    visible_at: OffsetDateTime,
    task: RetryTask,
}

/// A retry queue in a JSON file.
pub struct FileRetryQueue {
    path: PathBuf,
    state: Mutex<State>,
}

fn io_error(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        reason: format!("local retry queue {what}: {e}"),
    }
}

impl FileRetryQueue {
    /// Opens (or starts) the queue in `data_dir`. An unreadable file is an error
    /// rather than an empty queue: starting afresh would lose its dead letters.
    pub fn open(data_dir: &std::path::Path) -> Result<Self, BusError> {
        let path = data_dir.join(FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io_error("unreadable", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(io_error("unreadable", e)),
        };
        Ok(Self {
            path,
            state: Mutex::new(state),
        })
    }

    fn save(&self, state: &State) -> Result<(), BusError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("the queue serializes");
        std::fs::write(&tmp, bytes).map_err(|e| io_error("not written", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| io_error("not written", e))
    }

    fn change<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, BusError> {
        let mut state = self.state.lock().expect("retry queue lock");
        let out = f(&mut state);
        self.save(&state)?;
        Ok(out)
    }

    /// Removes and returns every task visible at `now`, in scheduling order.
    pub fn take_visible(&self, now: OffsetDateTime) -> Result<Vec<RetryTask>, BusError> {
        self.change(|s| {
            let (visible, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut s.waiting)
                .into_iter()
                .partition(|w| w.visible_at <= now);
            s.waiting = waiting;
            visible.into_iter().map(|w| w.task).collect()
        })
    }

    /// How many tasks wait for an attempt.
    pub fn waiting(&self) -> usize {
        self.state.lock().expect("retry queue lock").waiting.len()
    }

    /// How many dead letters there are.
    pub fn dead_letter_count(&self) -> usize {
        self.state.lock().expect("retry queue lock").dead.len()
    }
}

#[async_trait]
impl RetryQueue for FileRetryQueue {
    async fn schedule(&self, task: &RetryTask, delay: Duration) -> Result<(), BusError> {
        let visible_at = OffsetDateTime::now_utc() + delay;
        self.change(|s| {
            s.waiting.push(Waiting {
                visible_at,
                task: task.clone(),
            })
        })
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BusError> {
        self.change(|s| {
            let receipt = s.next_receipt;
            s.next_receipt += 1;
            s.dead.insert(receipt, letter.clone());
        })
    }

    async fn receive_dead_letters(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        let state = self.state.lock().expect("retry queue lock");
        Ok(state
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
        self.change(|s| {
            for r in receipts {
                if let Ok(r) = r.parse::<u64>() {
                    s.dead.remove(&r);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{ChangeEvent, DirectoryId, EventType, TargetId};

    fn task() -> RetryTask {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        RetryTask {
            target_id: TargetId::parse("app").unwrap(),
            event: ChangeEvent::new(
                EventType::UserUpdated,
                DirectoryId::parse("acme").unwrap(),
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

    #[tokio::test]
    async fn dead_letters_and_waiting_retries_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = FileRetryQueue::open(dir.path()).unwrap();
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

        let q = FileRetryQueue::open(dir.path()).unwrap();
        assert_eq!(q.waiting(), 1);
        assert_eq!(q.dead_letter_count(), 1);
        assert!(q
            .take_visible(OffsetDateTime::now_utc())
            .unwrap()
            .is_empty());
        let letters = q.receive_dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(
            q.dead_letter_count(),
            1,
            "received letters stay until acknowledged"
        );
        q.ack_dead_letters(&[letters[0].receipt.clone()])
            .await
            .unwrap();
        drop(q);
        assert_eq!(
            FileRetryQueue::open(dir.path())
                .unwrap()
                .dead_letter_count(),
            0
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_an_empty_queue() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        assert!(FileRetryQueue::open(dir.path()).is_err());
    }
}
