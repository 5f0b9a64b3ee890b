//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod common;
mod fuzz;
mod handler;
mod key_reread;
mod ordering;
mod safeguard;
mod secret_parts;
mod simulator_http;
