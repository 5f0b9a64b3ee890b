//! The dispatcher's integration tests, linked into one test binary.

mod batch;
mod metrics;
