//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod dispatcher_targets;
mod end_to_end;
mod fair_delivery;
mod faults;
mod outbox_quarantine;
mod poller_modes;
mod retention;
mod scim_target;
