//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod change_notices;
mod common;
mod dynamo_store;
mod eventbridge;
mod kms_envelope;
mod retry_queue;
mod scheduler;
mod secrets;
mod store_contract;
