//! The sync itself, over the ports. No Lambda and no AWS here: the functions, the local
//! stack and the tests all drive these same services. Each concern has one home, and
//! none imports from a concern above it:
//!
//! - [`source`]: BambooHR as a source: the client a directory syncs with, its
//!   credentials, and checking or registering them at BambooHR.
//! - [`reconcile`]: applying BambooHR's data to the store: runs (full, incremental,
//!   targeted, with checkpoints), apply, groups, date-driven lifecycle, the outbox.
//! - [`ingest`]: BambooHR's webhooks, applied through reconcile.
//! - [`deliver`]: fan-out to targets: dispatch, ledger, breaker, delivery log, retry,
//!   replay, and one module per target kind.
//! - [`operate`]: what operators and housekeeping call: connect, settings, state,
//!   targets, status, holds, redrive, audit, evidence, retention, schedules.
//!
//! [`Engine`] (the capabilities), [`EngineError`] and [`signing`] sit under all of them.

pub mod deliver;
pub mod deps;
pub mod error;
pub mod ingest;
pub mod operate;
pub mod reconcile;
pub mod signing;
pub mod source;

pub use deps::Engine;
pub use error::{ConnectProblem, EngineError};
/// The outbound HTTP policy engines call out under.
pub use outbound_http;
