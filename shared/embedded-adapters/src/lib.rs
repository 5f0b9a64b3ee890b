//! Embedded adapters of the ports, for the local `dev` stack and for tests: a
//! file-backed store, a SQLite store, secrets from a local file or the environment, an
//! in-process bus, and an in-process retry queue (in memory, or kept in a file for
//! `dev`). They pass the same contract suite as the AWS adapters.

mod audit_store;
pub mod bus;
mod delivery_store;
pub mod retry_queue;
pub mod scheduler;
pub mod secrets;
pub mod sqlite;
pub mod store;
mod sync_store;

pub use bus::InProcessBus;
pub use retry_queue::{InProcessForeignBus, InProcessRetryQueue};
pub use scheduler::InProcessScheduler;
pub use secrets::FileSecrets;
pub use sqlite::SqliteStore;
pub use store::FileStore;
