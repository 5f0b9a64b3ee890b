//! The sync itself, over the ports: full sync from BambooHR, webhook ingest, the
//! outbox, and delivery to targets. No Lambda and no AWS here: the functions, the local
//! stack and the tests all drive these same services.

pub mod admin;
pub mod apply;
pub mod connect;
pub mod credentials;
pub mod deps;
pub mod dispatch;
pub mod emf;
pub mod error;
pub mod full_sync;
pub mod groups;
pub mod idset;
pub mod ingest;
pub mod lifecycle;
pub mod outbox;
pub mod replay;
pub mod retention;
pub mod retry;
pub mod run;
pub mod schedule;
pub mod scim;
pub mod scim_groups;
pub mod signing;
pub mod upsert;

pub use deps::Engine;
pub use error::EngineError;
