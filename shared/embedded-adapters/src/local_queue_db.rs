//! The local stack's queue database: one SQLite file (`<data-dir>/queues.db`) that
//! keeps what SQS and EventBridge Scheduler keep on AWS: the change queue, the retry
//! queue with its dead letters, and the poller's schedules.
//!
//! Why SQLite: every change is one small transaction (O(1) per change, not a rewrite of
//! the whole state), a crash at any instant leaves the last committed state, and the
//! one-shot CLI commands can read the same file. The connection runs in WAL mode with
//! `synchronous=FULL` (a change reported done survives a power cut too, since the
//! outbox is released on the strength of it), a busy timeout so another process's
//! short write waits instead of failing, and `BEGIN IMMEDIATE` for every write so two
//! writers never deadlock upgrading read locks.
//!
//! The calls block the calling thread for the length of one small transaction; that is
//! fine for a local process whose transactions take microseconds to milliseconds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::data_dir::{create_private_dir, make_private, open_private_file};

/// The database's file name in a data directory.
pub const QUEUES_DB_FILE: &str = "queues.db";

/// How long a write waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Every table, created on first open. Times are Unix nanoseconds (i64: good to 2262).
const SCHEMA: &str = "
-- The change queue (SQS FIFO on AWS). `seq` is the FIFO order; `group_key` the
-- message group (directory:object). A message is leased by setting `visible_at`
-- ahead and bumping `receive_count`, which is part of its receipt.
CREATE TABLE IF NOT EXISTS change_queue (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,
    group_key     TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS change_queue_group ON change_queue (group_key, seq);
CREATE INDEX IF NOT EXISTS change_queue_visible ON change_queue (visible_at, seq);

-- Failed deliveries waiting for their next attempt (the SQS retry queue).
CREATE TABLE IF NOT EXISTS retry_waiting (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    visible_at INTEGER NOT NULL,
    task       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS retry_waiting_visible ON retry_waiting (visible_at, seq);

-- Retry tasks given up (the dead-letter queue); the rowid is the receipt.
CREATE TABLE IF NOT EXISTS retry_dead (
    receipt INTEGER PRIMARY KEY AUTOINCREMENT,
    letter  TEXT NOT NULL
);

-- Change messages the dispatcher can never handle, set aside with why (the change
-- queue's dead-letter queue on AWS).
CREATE TABLE IF NOT EXISTS change_dead (
    receipt    INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL,
    grp        TEXT,
    body       TEXT NOT NULL,
    reason     TEXT NOT NULL
);

-- Recurring poller schedules, one per directory (EventBridge Scheduler).
CREATE TABLE IF NOT EXISTS schedule_recurring (
    directory_id            TEXT    PRIMARY KEY,
    every_minutes           INTEGER NOT NULL,
    flexible_window_minutes INTEGER NOT NULL,
    enabled                 INTEGER NOT NULL,
    request                 TEXT    NOT NULL,
    last_fired              INTEGER
);

-- One-time runs, unique per directory, mode and UTC minute.
CREATE TABLE IF NOT EXISTS schedule_once (
    directory_id TEXT    NOT NULL,
    mode         TEXT    NOT NULL,
    minute       INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    request      TEXT    NOT NULL,
    PRIMARY KEY (directory_id, mode, minute)
);
";

/// The database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[error("local queue database {where_}: {reason}")]
pub struct QueueDbError {
    where_: String,
    reason: String,
}

impl QueueDbError {
    fn new(db: &QueueDb, reason: impl std::fmt::Display) -> Self {
        Self {
            where_: db.describe(),
            reason: reason.to_string(),
        }
    }

    fn at(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self {
            where_: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// One open queue database, shared by the queues and the scheduler that live in it.
#[derive(Debug)]
pub struct QueueDb {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

impl QueueDb {
    /// Opens (creating if needed) the database at `path`: its directory is created
    /// 0700 and the file kept 0600 (unix), the schema is created or checked.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<Self>, QueueDbError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(|e| QueueDbError::at(path, e))?;
        }
        // Created here first so SQLite inherits 0600 (it gives the -wal and -shm files
        // the database file's mode).
        drop(open_private_file(path).map_err(|e| QueueDbError::at(path, e))?);
        let conn = Connection::open(path).map_err(|e| QueueDbError::at(path, e))?;
        let db = Self {
            conn: Mutex::new(conn),
            path: Some(path.to_path_buf()),
        };
        db.prepare()?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            make_private(Path::new(&side)).map_err(|e| QueueDbError::at(path, e))?;
        }
        Ok(Arc::new(db))
    }

    /// Opens `<dir>/queues.db`.
    pub fn open_in_data_dir(dir: impl AsRef<Path>) -> Result<Arc<Self>, QueueDbError> {
        Self::open(dir.as_ref().join(QUEUES_DB_FILE))
    }

    /// A private database in memory, for tests and the in-memory adapters.
    pub fn in_memory() -> Result<Arc<Self>, QueueDbError> {
        let conn = Connection::open_in_memory().map_err(|e| QueueDbError {
            where_: "(in memory)".into(),
            reason: e.to_string(),
        })?;
        let db = Self {
            conn: Mutex::new(conn),
            path: None,
        };
        db.prepare()?;
        Ok(Arc::new(db))
    }

    /// The database file, if it has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn describe(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "(in memory)".into(),
        }
    }

    /// Pragmas and schema. A file written by a newer build is refused rather than
    /// misread.
    fn prepare(&self) -> Result<(), QueueDbError> {
        let mut conn = self.lock();
        let setup = |conn: &mut Connection| -> rusqlite::Result<Result<(), String>> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // In memory the journal mode stays "memory"; the answer is not checked.
            conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
            conn.execute_batch("PRAGMA synchronous = FULL;")?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Ok(Err(format!(
                    "written by a newer version (schema {version}, this build knows {SCHEMA_VERSION})"
                )));
            }
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))?;
            tx.commit()?;
            Ok(Ok(()))
        };
        match setup(&mut conn) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(QueueDbError::new(self, reason)),
            Err(e) => Err(QueueDbError::new(self, e)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction rolls it back when the transaction drops, so the
        // connection behind a poisoned lock is still consistent.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed only if `f` succeeds.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, QueueDbError> {
        let mut conn = self.lock();
        let run = |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut conn).map_err(|e: rusqlite::Error| QueueDbError::new(self, e))
    }

    /// Runs `f` on the connection, for reads (one statement sees one snapshot).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, QueueDbError> {
        f(&self.lock()).map_err(|e| QueueDbError::new(self, e))
    }
}

/// An instant as stored: Unix nanoseconds, clamped to what an i64 holds.
pub(crate) fn to_nanos(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// An instant read back from its Unix nanoseconds.
pub(crate) fn from_nanos(nanos: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .expect("every i64 of nanoseconds is a valid instant")
}

/// A JSON column that does not decode, as a SQLite error (so the transaction rolls back).
pub(crate) fn json_error(column: usize, e: serde_json::Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(QUEUES_DB_FILE);
        drop(QueueDb::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
        drop(conn);
        let err = QueueDb::open(&path).unwrap_err().to_string();
        assert!(err.contains("newer version"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queues.db");
        std::fs::write(
            &path,
            b"{\"waiting\": [], \"dead\": {}, \"nextReceipt\": 0}",
        )
        .unwrap();
        assert!(QueueDb::open(&path).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_database_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let db = QueueDb::open_in_data_dir(&data).unwrap();
        db.write(|tx| {
            tx.execute(
                "INSERT INTO retry_dead (letter) VALUES ('{}')",
                rusqlite::params![],
            )
        })
        .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        for name in ["queues.db", "queues.db-wal", "queues.db-shm"] {
            let p = data.join(name);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{name}");
            }
        }
    }
}
