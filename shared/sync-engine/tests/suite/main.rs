//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod admin;
mod common;
mod connect;
mod delivery_retry;
mod evidence;
mod full_sync;
mod litmos;
mod outbound;
mod outbox_and_dispatch;
mod retention;
mod scim;
mod secret_parts;
mod setup_links;
mod simulator_webhooks;
mod workos_and_minimisation;
