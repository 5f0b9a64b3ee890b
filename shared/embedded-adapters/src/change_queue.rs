//! [`SqliteChangeQueue`]: the local stack's durable change queue, in the role SQS FIFO
//! plays on AWS between the outbox and the dispatcher.
//!
//! Publishing inserts the events in one transaction and reports them published only
//! once it has committed, so the outbox is released only for events that are on disk;
//! a `dev` killed at any point loses nothing. The consumer leases messages
//! ([`SqliteChangeQueue::receive`]): they stay in the table, invisible until their
//! visibility timeout passes, and are removed only by [`SqliteChangeQueue::ack`], so
//! the messages of a consumer that died come back (at-least-once, as on SQS).
//!
//! Order per object, as in a FIFO message group: messages carry a sequence number, and
//! a message is handed out only when no earlier message of the same object
//! (`directory:object`) is leased or delayed. One receive may return several messages
//! of an object, in order, as SQS FIFO does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ChangeEvent;
use ports::{BusError, Clock, EventBus, PublishOutcome};
use rusqlite::params;
use tokio::sync::Notify;

use crate::local_queue_db::{json_error, to_nanos, QueueDb, QueueDbError};

/// How often a waiting consumer looks at the table when nothing wakes it: messages
/// published by another process, and leases that expire, do not notify.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// A message taken off the queue: the event and the receipt that acknowledges it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedChange {
    /// Acknowledges this lease ([`SqliteChangeQueue::ack`]); a receipt of an earlier
    /// lease of the same message no longer does.
    pub receipt: String,
    /// The change.
    pub event: ChangeEvent,
    /// How many times the message has been received, this time included (SQS's
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
}

/// The durable change queue. Cheap to share behind an `Arc`: the engine publishes to it
/// as its [`EventBus`] and the dispatch loop consumes from it.
pub struct SqliteChangeQueue {
    db: Arc<QueueDb>,
    clock: Arc<dyn Clock>,
    notify: Notify,
    poll_interval: Duration,
    failing: AtomicBool,
}

fn unavailable(e: QueueDbError) -> BusError {
    BusError::Unavailable {
        reason: e.to_string(),
    }
}

/// A receipt is `<seq>.<receive_count>`: the message and which lease of it.
fn parse_receipt(receipt: &str) -> Option<(i64, i64)> {
    let (seq, count) = receipt.split_once('.')?;
    Some((seq.parse().ok()?, count.parse().ok()?))
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl SqliteChangeQueue {
    /// The queue in an open database (shared with the retry queue and scheduler);
    /// visibility is measured on `clock`.
    pub fn from_db(db: Arc<QueueDb>, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            clock,
            notify: Notify::new(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            failing: AtomicBool::new(false),
        }
    }

    /// The queue in the database file at `path` (created if missing), e.g.
    /// `<data-dir>/queues.db`.
    pub fn open(
        path: impl AsRef<std::path::Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BusError> {
        Ok(Self::from_db(
            QueueDb::open(path).map_err(unavailable)?,
            clock,
        ))
    }

    /// A queue in memory, for tests.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Self {
        Self::from_db(
            QueueDb::in_memory().expect("an in-memory database opens"),
            clock,
        )
    }

    /// How often [`SqliteChangeQueue::receive_wait`] looks again when not woken.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// While failing, every publish returns `BusError::Unavailable` (outbox tests).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Leases up to `max` visible messages, oldest first, each hidden for
    /// `visibility_timeout` unless acknowledged. A message whose object has an earlier
    /// message leased or delayed is not handed out.
    pub fn receive(
        &self,
        max: usize,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedChange>, BusError> {
        let now = to_nanos(self.clock.now());
        let until = now.saturating_add(nanos(visibility_timeout));
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.db
            .write(|tx| {
                let rows: Vec<(i64, String, i64)> = tx
                    .prepare_cached(
                        "SELECT c.seq, c.body, c.receive_count FROM change_queue c
                         WHERE c.visible_at <= ?1
                           AND NOT EXISTS (
                               SELECT 1 FROM change_queue e
                               WHERE e.group_key = c.group_key AND e.seq < c.seq
                                 AND e.visible_at > ?1)
                         ORDER BY c.seq LIMIT ?2",
                    )?
                    .query_map(params![now, max], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut lease = tx.prepare_cached(
                    "UPDATE change_queue SET visible_at = ?2, receive_count = ?3 WHERE seq = ?1",
                )?;
                let mut out = Vec::with_capacity(rows.len());
                for (seq, body, count) in rows {
                    let count = count + 1;
                    lease.execute(params![seq, until, count])?;
                    out.push(ReceivedChange {
                        receipt: format!("{seq}.{count}"),
                        event: serde_json::from_str(&body).map_err(|e| json_error(1, e))?,
                        receive_count: u32::try_from(count).unwrap_or(u32::MAX),
                    });
                }
                Ok(out)
            })
            .map_err(unavailable)
    }

    /// Like [`SqliteChangeQueue::receive`], but waits up to `wait` for a message when
    /// none is visible (SQS long polling): woken at once by a publish or ack in this
    /// process, and looking again every poll interval for what other processes did and
    /// for leases that ran out.
    pub async fn receive_wait(
        &self,
        max: usize,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedChange>, BusError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a publish between the look and the wait
            // is not missed (and `notify_one` keeps a permit when nobody waits).
            let notified = self.notify.notified();
            let got = self.receive(max, visibility_timeout)?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let nap = self.poll_interval.min(deadline - now);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Removes the messages of these receipts for good; returns how many it removed.
    /// A receipt of a lease that was superseded (the message was received again after
    /// its timeout) or of a message already gone removes nothing.
    pub fn ack(&self, receipts: &[String]) -> Result<usize, BusError> {
        let removed = self
            .db
            .write(|tx| {
                let mut delete = tx.prepare_cached(
                    "DELETE FROM change_queue WHERE seq = ?1 AND receive_count = ?2",
                )?;
                let mut n = 0;
                for (seq, count) in receipts.iter().filter_map(|r| parse_receipt(r)) {
                    n += delete.execute(params![seq, count])?;
                }
                Ok(n)
            })
            .map_err(unavailable)?;
        // Acknowledging may free the next message of an object.
        self.notify.notify_one();
        Ok(removed)
    }

    /// Makes the leased messages of these receipts visible again after `delay`
    /// (`Duration::ZERO`: at once), e.g. for deliveries that failed in this batch;
    /// the object's later messages keep waiting behind them.
    pub fn change_visibility(&self, receipts: &[String], delay: Duration) -> Result<(), BusError> {
        let at = to_nanos(self.clock.now()).saturating_add(nanos(delay));
        self.db
            .write(|tx| {
                let mut update = tx.prepare_cached(
                    "UPDATE change_queue SET visible_at = ?3 WHERE seq = ?1 AND receive_count = ?2",
                )?;
                for (seq, count) in receipts.iter().filter_map(|r| parse_receipt(r)) {
                    update.execute(params![seq, count, at])?;
                }
                Ok(())
            })
            .map_err(unavailable)?;
        self.notify.notify_one();
        Ok(())
    }

    /// Makes every leased or delayed message visible now. For a consumer that holds the
    /// data directory's lock at start: whoever leased them before has died, so their
    /// deliveries are retried at once instead of after the visibility timeout.
    pub fn release_leases(&self) -> Result<usize, BusError> {
        let now = to_nanos(self.clock.now());
        let released = self
            .db
            .write(|tx| {
                tx.prepare_cached("UPDATE change_queue SET visible_at = ?1 WHERE visible_at > ?1")?
                    .execute(params![now])
            })
            .map_err(unavailable)?;
        self.notify.notify_one();
        Ok(released)
    }

    /// How many messages the queue holds, leased ones included.
    pub fn depth(&self) -> Result<u64, BusError> {
        self.db
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM change_queue", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(unavailable)
    }
}

#[async_trait]
impl EventBus for SqliteChangeQueue {
    /// All or nothing: the events are committed together, or the publish fails and the
    /// outbox keeps them all. An event already waiting in the queue (same id: the
    /// outbox re-publishing after a crash) is not queued twice, as SQS FIFO's
    /// deduplication does.
    async fn publish(&self, events: &[ChangeEvent]) -> Result<PublishOutcome, BusError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BusError::Unavailable {
                reason: "local change queue set to fail".into(),
            });
        }
        let now = to_nanos(self.clock.now());
        let bodies: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).expect("a change event serializes"))
            .collect();
        self.db
            .write(|tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO change_queue
                         (event_id, group_key, body, enqueued_at, visible_at)
                     VALUES (?1, ?2, ?3, ?4, ?4)",
                )?;
                for (e, body) in events.iter().zip(&bodies) {
                    insert.execute(params![e.id.to_string(), e.ordering_key(), body, now])?;
                }
                Ok(())
            })
            .map_err(unavailable)?;
        self.notify.notify_one();
        Ok(PublishOutcome {
            published: events.iter().map(|e| e.id.clone()).collect(),
            failed: Vec::new(),
            rejected: Vec::new(),
        })
    }
}

#[cfg(test)]
#[path = "change_queue_tests.rs"]
mod tests;
