//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod fuzz_bamboohr_responses;
mod fuzz_config_files;
mod fuzz_queue_payloads;
mod fuzz_scim_responses;
mod fuzz_signatures;
mod no_secrets_in_logs;
mod one_tls_stack;
