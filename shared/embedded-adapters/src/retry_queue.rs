//! The local stack's retry queue (and the tests'), and its customer-bus stand-in:
//! scheduled retries wait in one table until due, dead letters in another, and events
//! re-published to "customer buses" are kept per bus ARN.
//!
//! A queue lives in a private in-memory database ([`InProcessRetryQueue::new`], for
//! tests) or in the data directory's SQLite database ([`InProcessRetryQueue::open`],
//! [`InProcessRetryQueue::from_db`]), as SQS keeps it on AWS: failed deliveries waiting
//! for their next attempt and dead letters survive a restart of `dev`, and the one-shot
//! CLI commands read and re-drive the dead letters: `status` counts them, `replay
//! dead-letters` puts them back among the waiting retries, which the next `dev` run
//! attempts.
//!
//! Every change is one SQLite transaction touching only the rows it changes (the JSON
//! file of earlier versions was rewritten whole on every change); a change the database
//! does not take is not made at all. [`InProcessRetryQueue::import_json`] carries over
//! a queue file of those versions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::ChangeEvent;
use ports::{
    BusError, Clock, DeadLetter, ForeignBus, ForeignBusError, ReceivedDeadLetter, RetryQueue,
    RetryTask,
};
use rusqlite::params;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::local_queue_db::{from_nanos, json_error, to_nanos, QueueDb, QueueDbError};

/// The retry queue in SQLite. Delays are measured from the queue's clock and tasks
/// taken at the `now` the caller passes to [`InProcessRetryQueue::take_visible`], so
/// tests can drive time.
pub struct InProcessRetryQueue {
    db: Arc<QueueDb>,
    clock: Arc<dyn Clock>,
}

fn unavailable(e: QueueDbError) -> BusError {
    BusError::Unavailable {
        reason: format!("local retry queue: {e}"),
    }
}

/// The JSON queue file of earlier versions, read only to import it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyQueues {
    waiting: Vec<LegacyWaiting>,
    dead: BTreeMap<u64, DeadLetter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyWaiting {
    #[serde(with = "time::serde::rfc3339")]
    visible_at: OffsetDateTime,
    task: RetryTask,
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("retry tasks serialize")
}

impl InProcessRetryQueue {
    /// An empty queue in memory whose delays start at `clock`'s now.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::from_db(
            QueueDb::in_memory().expect("an in-memory database opens"),
            clock,
        )
    }

    /// The queue in the SQLite database at `path` (e.g. `<data-dir>/queues.db`), as it
    /// was left there; created (0600, in a 0700 directory) if missing. A file that is
    /// not such a database is an error rather than an empty queue: starting afresh
    /// would lose its dead letters.
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self, BusError> {
        Ok(Self::from_db(
            QueueDb::open(path).map_err(unavailable)?,
            clock,
        ))
    }

    /// The queue in an open database (shared with the change queue and scheduler).
    pub fn from_db(db: Arc<QueueDb>, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Moves the waiting retries and dead letters of a JSON queue file of earlier
    /// versions into this queue, in one transaction, then renames the file to
    /// `<name>.imported` so it is not imported twice. Returns how many tasks and
    /// letters it moved; a missing file moves nothing.
    pub fn import_json(&self, path: impl AsRef<Path>) -> Result<usize, BusError> {
        let path = path.as_ref();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(legacy_error(path, e)),
        };
        let legacy: LegacyQueues =
            serde_json::from_slice(&bytes).map_err(|e| legacy_error(path, e))?;
        let moved = legacy.waiting.len() + legacy.dead.len();
        self.db
            .write(|tx| {
                for w in &legacy.waiting {
                    insert_waiting(tx, to_nanos(w.visible_at), &w.task)?;
                }
                for letter in legacy.dead.values() {
                    insert_dead(tx, letter)?;
                }
                Ok(())
            })
            .map_err(unavailable)?;
        let mut done = path.as_os_str().to_owned();
        done.push(".imported");
        std::fs::rename(path, &done).map_err(|e| legacy_error(path, e))?;
        Ok(moved)
    }

    /// Removes and returns every task visible at `now`, in scheduling order, or says
    /// why the database did not take the change (then nothing is taken).
    pub fn try_take_visible(&self, now: OffsetDateTime) -> Result<Vec<RetryTask>, BusError> {
        let now = to_nanos(now);
        self.db
            .write(|tx| {
                let tasks = tx
                    .prepare_cached(
                        "SELECT task FROM retry_waiting WHERE visible_at <= ?1 ORDER BY seq",
                    )?
                    .query_map(params![now], |r| r.get::<_, String>(0))?
                    .map(|row| serde_json::from_str(&row?).map_err(|e| json_error(0, e)))
                    .collect::<rusqlite::Result<Vec<RetryTask>>>()?;
                tx.execute(
                    "DELETE FROM retry_waiting WHERE visible_at <= ?1",
                    params![now],
                )?;
                Ok(tasks)
            })
            .map_err(unavailable)
    }

    /// Removes and returns every task visible at `now`, in scheduling order. One whose
    /// database cannot be written takes nothing (the tasks stay waiting;
    /// [`InProcessRetryQueue::try_take_visible`] says why).
    pub fn take_visible(&self, now: OffsetDateTime) -> Vec<RetryTask> {
        self.try_take_visible(now).unwrap_or_default()
    }

    /// When the earliest waiting task becomes visible (`None` also when the database
    /// cannot be read; the failure is logged).
    pub fn next_visible_at(&self) -> Option<OffsetDateTime> {
        self.db
            .read(|c| {
                c.query_row("SELECT MIN(visible_at) FROM retry_waiting", [], |r| {
                    r.get::<_, Option<i64>>(0)
                })
            })
            .map_err(|e| tracing::warn!(error = %e, "retry queue not readable"))
            .ok()
            .flatten()
            .map(from_nanos)
    }

    /// How many tasks wait (0 also when the database cannot be read; logged).
    pub fn waiting(&self) -> usize {
        self.db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM retry_waiting", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map_err(|e| tracing::warn!(error = %e, "retry queue not readable"))
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }

    /// The dead letters, oldest first (they stay until acknowledged); empty also when
    /// the database cannot be read (logged).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.read_dead(usize::MAX)
            .map_err(|e| tracing::warn!(error = %e, "retry queue not readable"))
            .map(|letters| letters.into_iter().map(|r| r.letter).collect())
            .unwrap_or_default()
    }

    fn read_dead(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.db
            .read(|c| {
                c.prepare_cached(
                    "SELECT receipt, letter FROM retry_dead ORDER BY receipt LIMIT ?1",
                )?
                .query_map(params![max], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                })?
                .map(|row| {
                    let (receipt, letter) = row?;
                    Ok(ReceivedDeadLetter {
                        letter: serde_json::from_str(&letter).map_err(|e| json_error(1, e))?,
                        receipt: receipt.to_string(),
                    })
                })
                .collect()
            })
            .map_err(unavailable)
    }
}

fn legacy_error(path: &Path, e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable {
        reason: format!("retry queue file {} not imported: {e}", path.display()),
    }
}

fn insert_waiting(
    tx: &rusqlite::Transaction<'_>,
    visible_at: i64,
    task: &RetryTask,
) -> rusqlite::Result<usize> {
    tx.prepare_cached("INSERT INTO retry_waiting (visible_at, task) VALUES (?1, ?2)")?
        .execute(params![visible_at, to_json(task)])
}

fn insert_dead(tx: &rusqlite::Transaction<'_>, letter: &DeadLetter) -> rusqlite::Result<usize> {
    tx.prepare_cached("INSERT INTO retry_dead (letter) VALUES (?1)")?
        .execute(params![to_json(letter)])
}

#[async_trait]
impl RetryQueue for InProcessRetryQueue {
    async fn schedule(&self, task: &RetryTask, delay: Duration) -> Result<(), BusError> {
        let visible_at = to_nanos(self.clock.now() + delay);
        self.db
            .write(|tx| insert_waiting(tx, visible_at, task).map(drop))
            .map_err(unavailable)
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), BusError> {
        self.db
            .write(|tx| insert_dead(tx, letter).map(drop))
            .map_err(unavailable)
    }

    async fn dead_letter_change(&self, letter: &ports::ChangeDeadLetter) -> Result<(), BusError> {
        self.db
            .write(|tx| {
                tx.prepare_cached(
                    "INSERT INTO change_dead (message_id, grp, body, reason) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    letter.message_id,
                    letter.group,
                    letter.body,
                    letter.reason
                ])
                .map(drop)
            })
            .map_err(unavailable)?;
        tracing::warn!(message_id = %letter.message_id, reason = %letter.reason, "change message set aside");
        Ok(())
    }

    /// Received letters are not hidden: locally one re-drive runs at a time.
    async fn receive_dead_letters(&self, max: usize) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        self.read_dead(max)
    }

    async fn receive_dead_letters_of(
        &self,
        directory: &domain::DirectoryId,
        max: usize,
    ) -> Result<Vec<ReceivedDeadLetter>, BusError> {
        // Local queues are small: read them whole and keep the directory's letters.
        let all = self.read_dead(usize::MAX)?;
        Ok(all
            .into_iter()
            .filter(|r| &r.letter.task.event.directory_id == directory)
            .take(max)
            .collect())
    }

    async fn ack_dead_letters(&self, receipts: &[String]) -> Result<(), BusError> {
        self.db
            .write(|tx| {
                let mut delete = tx.prepare_cached("DELETE FROM retry_dead WHERE receipt = ?1")?;
                for r in receipts.iter().filter_map(|r| r.parse::<i64>().ok()) {
                    delete.execute(params![r])?;
                }
                Ok(())
            })
            .map_err(unavailable)
    }

    async fn dead_letter_depth(&self) -> Result<u64, BusError> {
        self.db
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT COUNT(*) FROM retry_dead) + (SELECT COUNT(*) FROM change_dead)",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(unavailable)
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
            force: false,
        }
    }

    /// A file-backed queue in a fresh directory (kept alive by the returned guard).
    fn in_file() -> (InProcessRetryQueue, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            InProcessRetryQueue::open(dir.path().join("queues.db"), Arc::new(SystemClock)).unwrap();
        (queue, dir)
    }

    #[tokio::test]
    async fn the_in_process_retry_queue_passes_the_dead_letter_contract() {
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letters_round_trip_until_acknowledged(&queue).await;
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letter_depth_counts_letters_until_acknowledged(&queue).await;
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::dead_letters_of_one_directory_leave_the_others(&queue).await;
        let queue = InProcessRetryQueue::new(Arc::new(SystemClock));
        ports::contract_retry::set_aside_changes_count_and_stay_out_of_the_delivery_letters(&queue)
            .await;
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
            force: false,
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
        let path = dir.path().join("queues.db");
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
        let path = dir.path().join("queues.db");
        std::fs::write(&path, b"{not json, not a database either").unwrap();
        assert!(InProcessRetryQueue::open(&path, Arc::new(SystemClock)).is_err());
    }

    #[tokio::test]
    async fn a_change_the_database_does_not_take_is_not_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.db");
        let q = InProcessRetryQueue::open(&path, Arc::new(SystemClock)).unwrap();
        q.schedule(&task(), Duration::ZERO).await.unwrap();
        // Another process holds the write lock past the busy timeout? Too slow for a
        // unit test; a dead-letter table that refuses inserts fails the same way.
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON retry_dead
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let letter = DeadLetter {
            task: task(),
            reason: "given up".into(),
        };
        assert!(q.dead_letter(&letter).await.is_err());
        assert_eq!(q.dead_letter_depth().await.unwrap(), 0);
        assert_eq!(q.waiting(), 1, "the earlier change is still there");
    }

    #[test]
    fn a_database_in_an_unusable_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        // Its "directory" is a file, so nothing can be created there.
        assert!(InProcessRetryQueue::open(file.join("queues.db"), Arc::new(SystemClock)).is_err());
    }

    #[tokio::test]
    async fn a_json_queue_of_an_earlier_version_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("retry-queue.json");
        let due = OffsetDateTime::from_unix_timestamp(1_800_000_100).unwrap();
        let letter = DeadLetter {
            task: task(),
            reason: "11 attempts failed".into(),
        };
        let legacy = serde_json::json!({
            "waiting": [{"visibleAt": "2027-01-15T08:01:40Z", "task": task()}],
            "dead": {"4": letter},
            "nextReceipt": 5,
        });
        std::fs::write(&json, serde_json::to_vec(&legacy).unwrap()).unwrap();

        let q =
            InProcessRetryQueue::open(dir.path().join("queues.db"), Arc::new(SystemClock)).unwrap();
        assert_eq!(q.import_json(&json).unwrap(), 2);
        assert_eq!(q.next_visible_at(), Some(due));
        assert_eq!(q.dead_letters(), vec![letter]);
        assert!(!json.exists(), "renamed, so not imported twice");
        assert!(dir.path().join("retry-queue.json.imported").exists());
        assert_eq!(q.import_json(&json).unwrap(), 0);
        assert_eq!(q.waiting(), 1);
    }
}
