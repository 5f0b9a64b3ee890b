//! Embedded adapters of the ports, for the local `dev` stack and for tests: a
//! SQLite store, secrets from a local file or the environment,
//! an in-process bus, a durable change queue, retry queue and scheduler in one SQLite
//! database of the data directory (or in memory for tests), and the data directory's
//! lock and private permissions. They pass the same contract suite as the AWS adapters.

pub mod bus;
pub mod change_queue;
pub mod data_dir;
pub mod local_queue_db;
pub mod retry_queue;
pub mod scheduler;
pub mod sealer;
pub mod secrets;
pub mod sqlite;

pub use bus::InProcessBus;
pub use change_queue::{ReceivedChange, SqliteChangeQueue};
pub use data_dir::{DataDirLock, LockError};
pub use local_queue_db::{QueueDb, QueueDbError, QUEUES_DB_FILE};
pub use retry_queue::{InProcessForeignBus, InProcessRetryQueue};
pub use scheduler::InProcessScheduler;
pub use sealer::LocalSealer;
pub use secrets::FileSecrets;
pub use sqlite::SqliteStore;
