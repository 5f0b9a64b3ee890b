//! Every integration test of this crate, linked into one test binary: each file
//! below was its own binary, and linking dozens of binaries that each carry the
//! AWS SDK cost CI minutes and gigabytes of disk.

mod properties;
mod vocabularies;
mod workos_golden;
