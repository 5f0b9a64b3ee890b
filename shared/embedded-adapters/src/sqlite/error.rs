//! What can go wrong inside the SQLite store, and how it reaches callers as a
//! `ports::StoreError`: a busy database, a failed file operation or any other SQLite
//! failure is `Unavailable` (with SQLite's reason, which names tables and constraints,
//! never stored values); a row that does not decode is `Corrupt`.

use std::path::PathBuf;

use ports::StoreError;
use rusqlite::ErrorCode;

/// A failure of the SQLite store.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    /// SQLite refused or failed a call (busy past the timeout, disk full, I/O, ...).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the database file, its directory or setting their permissions failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A port-level outcome decided inside a transaction (a conflict, an undecodable
    /// row), passed through unchanged.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        match e {
            SqliteError::Store(e) => e,
            SqliteError::Sqlite(err) => {
                if is_corruption(&err) {
                    StoreError::Corrupt {
                        what: "sqlite store".into(),
                        reason: err.to_string(),
                    }
                } else {
                    StoreError::Unavailable {
                        reason: format!("sqlite: {err}"),
                    }
                }
            }
            e @ SqliteError::Io { .. } => StoreError::Unavailable {
                reason: e.to_string(),
            },
        }
    }
}

/// Whether SQLite says the data itself is bad (as opposed to unreachable for now).
fn is_corruption(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(f, _) => {
            matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => true,
        _ => false,
    }
}

/// A `Corrupt` error for the item `what`.
pub(crate) fn corrupt(what: &str, reason: impl Into<String>) -> SqliteError {
    SqliteError::Store(StoreError::Corrupt {
        what: what.to_string(),
        reason: reason.into(),
    })
}

/// A `Conflict` error for the item `what`, whose writer expected `expected`.
pub(crate) fn conflict(what: String, expected: Option<u64>) -> SqliteError {
    SqliteError::Store(StoreError::Conflict { what, expected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_unavailable_and_retryable_while_bad_rows_are_corrupt() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        );
        let e = StoreError::from(SqliteError::from(busy));
        assert!(e.is_retryable(), "{e}");
        assert!(e.to_string().contains("database is locked"), "{e}");

        let bad =
            rusqlite::Error::InvalidColumnType(0, "version".into(), rusqlite::types::Type::Text);
        let e = StoreError::from(SqliteError::from(bad));
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    }
}
