//! [`SqliteStore`]: `ports::Store` and its sub-stores (sync, delivery, audit) on an
//! embedded SQLite database, for the local stack. Unlike `FileStore` (one JSON file
//! rewritten whole after every write) a write costs one short transaction whatever
//! the number of users, and several processes (the `dev` server and CLI commands from
//! other terminals) may open the same file at once: SQLite coordinates them.
//!
//! # Layout
//!
//! One table `items` mirrors the DynamoDB table: the same `pk`/`sk` strings
//! (`DIR#acme` / `META`, `USER#42`, `OUTBOX#<event>`, `LEDGER#<target>#<object>`,
//! `REFRESH#…`, `RECEIPT#…`, `GROUP#…`, `RUN#…`, `LEASE`, `CHECKPOINT`, `DLOG#…`,
//! `ACCT#…`, `BREAKER#…`, `EVID#…`, `SETUP#…`), the JSON of the value in `data`, and the
//! attributes the DynamoDB design keeps beside it as columns (`version`, `fp`, `state`,
//! `lc`, `gsi1pk`, `gsi1sk`, `seq`, `status`, `expires_at`, `requested_at`, `holder`,
//! `lease_until`, `account_id`, `captured_at`). The primary key serves every
//! begins-with query as a range; the partial covering index `fingerprints` is the GSI
//! (user fingerprints and the directory listing, no `data` read); the partial index
//! `outbox` gives a directory's pending events in write order. Audit entries have
//! their own table `audit` (DynamoDB's AuditTable), append-only by trigger, so a purge
//! of `items` never reaches them. The schema text is in `schema`.
//!
//! # Writes and concurrency
//!
//! Every write call is one `BEGIN IMMEDIATE` transaction on the process's one write
//! connection: the write lock is taken up front, so two processes never both read and
//! then fail to upgrade (SQLite's deadlock between deferred writers), and a
//! conditional write's check and write see the same state. A user or group write and
//! its outbox events commit together. Outbox `seq` is the directory's highest plus
//! one, read inside that transaction, so it is strictly increasing across processes.
//!
//! Reads use a small pool of separate connections: in WAL mode a reader sees the last
//! committed state and never waits for a writer, in this process or another.
//! `busy_timeout` (5 s) lets a writer wait for another process's transaction instead
//! of failing at once; past it the call fails with `StoreError::Unavailable`.
//!
//! `synchronous = NORMAL`: with WAL, a committed transaction survives any crash of the
//! process (it is in the WAL file before `COMMIT` returns); only an operating-system
//! crash or power loss can lose the last few commits, never corrupt the file. That is
//! enough for a local stack: a lost webhook receipt or refresh request is made good
//! by the next scheduled full sync, and FULL would put an fsync on every user write.
//!
//! # Async
//!
//! The ports are async and rusqlite is blocking. Calls run inline, under a
//! `std::sync::Mutex` for the write connection: each is tens of microseconds (cached
//! prepared statements, one transaction), so a `spawn_blocking` hop (a thread
//! hand-off and owned copies of every argument) would cost about as much as the work
//! itself. The price is that a runtime thread waits while another process holds the
//! write lock, at most `busy_timeout`; the local stack's writes are short, so in
//! practice that wait is microseconds too.
//!
//! # Where the code lives
//!
//! - `error`: [`SqliteError`] and its mapping to `ports::StoreError`.
//! - `schema`: the tables and indexes, item keys, and row values.
//! - `open`: files, permissions and connection settings.
//! - `store`, `sync`, `delivery`, `audit`, `setup_links`: the ports; `purge`: the
//!   directory purge.

mod audit;
mod delivery;
mod error;
mod open;
mod purge;
mod schema;
mod setup_links;
mod store;
mod sync;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, PoisonError};

use domain::{ChangeEvent, DirectoryId};
use ports::StoreError;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

pub use error::SqliteError;
use schema::{dir_pk, encode, outbox_sk, Row};

/// Idle read connections kept per store; more are opened while more readers run at
/// once, and closed after.
const MAX_IDLE_READERS: usize = 4;

/// The SQLite store. Share it behind an `Arc`; every method takes `&self`.
pub struct SqliteStore {
    /// The one connection this process writes with.
    writer: Mutex<Connection>,
    /// Idle read connections; None for an in-memory store, which reads on `writer`
    /// (a private in-memory database exists only on its own connection).
    readers: Option<Mutex<Vec<Connection>>>,
    /// The database file, for opening more read connections.
    path: Option<PathBuf>,
    /// Receipts recorded by this process, to sweep expired ones now and then.
    receipts_recorded: AtomicU64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The database file, None for an in-memory store.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed when `f` succeeds
    /// and rolled back when it fails.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, SqliteError>,
    ) -> Result<T, StoreError> {
        // A panic inside `f` dropped its transaction (rolled back): the connection is
        // sound, so a poisoned lock is taken over rather than propagated.
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let run = |conn: &mut Connection| -> Result<T, SqliteError> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        Ok(run(&mut conn)?)
    }

    /// Runs `f` on a read connection (the write connection for an in-memory store).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, SqliteError>,
    ) -> Result<T, StoreError> {
        let (Some(pool), Some(path)) = (&self.readers, &self.path) else {
            let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            return Ok(f(&conn)?);
        };
        let idle = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(c) => c,
            None => open::reader(path)?,
        };
        let out = f(&conn);
        let mut idle = pool.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        Ok(out?)
    }
}

/// Adds `events` to the directory's outbox after everything in it, inside the
/// caller's transaction. An event id already pending is replaced (and moves to the
/// end), as a second PutItem of the same key would.
pub(crate) fn push_events<'a>(
    tx: &Transaction<'_>,
    dir: &DirectoryId,
    events: impl IntoIterator<Item = &'a ChangeEvent>,
) -> Result<(), SqliteError> {
    let pk = dir_pk(dir);
    let mut seq: i64 = tx
        .prepare_cached(
            "SELECT COALESCE(MAX(seq), 0) FROM items WHERE pk = ?1 AND seq IS NOT NULL",
        )?
        .query_row(params![pk], |r| r.get(0))?;
    for event in events {
        seq += 1;
        let mut row = Row::new(pk.clone(), outbox_sk(&event.id));
        row.data = Some(encode(event, &format!("event {}", event.id))?);
        row.seq = Some(seq);
        row.put(tx)?;
    }
    Ok(())
}
