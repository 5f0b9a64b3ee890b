//! Whole-system checks that belong to no single crate (issue 8): property-based fuzzing
//! of every parser of outside input, each in `tests/`. The library itself is empty;
//! the tests reach every parser through its crate's public API, as production does.
//!
//! Case counts: proptest's default of 256 cases per property (CI); set
//! `PROPTEST_CASES=100000` for a long run by hand.
