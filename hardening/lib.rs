//! Whole-system checks that belong to no single crate (issue 8), each in `tests/`:
//! - `fuzz_*`: property-based fuzzing of every parser of outside input (BambooHR and
//!   SCIM answers, SQS messages, poller payloads, secrets and store files, signature
//!   headers), reached through each crate's public API as production reaches it;
//! - `no_secrets_in_logs`: the main flows on moto and the Python peers with every log
//!   line captured at TRACE, searched for seeded secrets and HR values.
//!
//! The library itself is empty. Case counts: proptest's default of 256 cases per
//! property (CI); `PROPTEST_CASES=100000 cargo test -p hardening` for a long run.
