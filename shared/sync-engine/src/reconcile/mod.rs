//! Reconciling the store with BambooHR: sync runs in every mode, applying one
//! employee record, derived groups, date-driven lifecycle transitions, and the outbox
//! that publishes what was written.

pub mod apply;
pub mod groups;
pub mod idset;
pub mod lifecycle;
pub mod outbox;
pub mod run;
