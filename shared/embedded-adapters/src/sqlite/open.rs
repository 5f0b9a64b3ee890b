//! Opening the store: the database file and its directory (owner-only, since the file
//! holds HR data), the connections' settings, and the schema.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use ports::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use super::error::SqliteError;
use super::schema::{SCHEMA, SCHEMA_VERSION};
use super::SqliteStore;

/// How long a connection waits for another one's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection; the store has a few dozen.
const STATEMENT_CACHE: usize = 64;

impl SqliteStore {
    /// Opens (or creates) the store at `path`. A missing file is created readable by
    /// its owner only (0600), and missing directories above it 0700; the WAL and
    /// shared-memory files beside it are made 0600 too.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;
        let mut writer = Connection::open(&path).map_err(SqliteError::from)?;
        configure(&writer)?;
        // WAL persists in the file; asking again when it already is WAL is a no-op.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(SqliteError::from)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable {
                reason: format!("{}: WAL journal mode refused ({mode})", path.display()),
            });
        }
        // NORMAL: see the module doc for why it is durable enough here.
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(SqliteError::from)?;
        migrate(&mut writer)?;
        restrict_companions(&path);
        Ok(Self {
            writer: Mutex::new(writer),
            readers: Some(Mutex::new(Vec::new())),
            path: Some(path),
            receipts_recorded: AtomicU64::new(0),
        })
    }

    /// A store that lives only as long as the value (tests): a private in-memory
    /// database on one connection.
    pub fn in_memory() -> Self {
        let mut conn = Connection::open_in_memory().expect("SQLite opens an in-memory database");
        configure(&conn).expect("an in-memory database takes the settings");
        migrate(&mut conn).expect("the schema applies to an empty database");
        Self {
            writer: Mutex::new(conn),
            readers: None,
            path: None,
            receipts_recorded: AtomicU64::new(0),
        }
    }
}

/// Another read connection on `path`.
pub(crate) fn reader(path: &Path) -> Result<Connection, SqliteError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    // A read connection never writes; this makes a slip an error, not a write that
    // bypasses the write connection's transactions.
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Settings every connection has.
fn configure(conn: &Connection) -> Result<(), SqliteError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Creates the tables and indexes when missing, in a write transaction so that two
/// processes opening a new file at once do not both try.
fn migrate(conn: &mut Connection) -> Result<(), SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(SqliteError::Store(StoreError::Unavailable {
            reason: format!(
                "the store's schema (version {version}) is newer than this program's \
                 ({SCHEMA_VERSION})"
            ),
        }));
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SqliteError + '_ {
    move |source| SqliteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the file (0600) and its missing directories (0700) before SQLite opens it,
/// so it never exists with looser permissions, whatever the umask.
fn create_private(path: &Path) -> Result<(), SqliteError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(parent).map_err(io(parent))?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(io(path))?;
    Ok(())
}

/// Makes the `-wal` and `-shm` files owner-only. SQLite creates them with the
/// database file's mode already; this holds even for files an older program left.
/// Failure (a file owned by someone else) is logged, not fatal: SQLite works on.
fn restrict_companions(path: &Path) {
    #[cfg(unix)]
    for suffix in ["-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        if file.exists() {
            if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file = %file.display(), error = %e, "could not make the file owner-only");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
