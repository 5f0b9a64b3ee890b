//! SCIM 2.0 targets against the real scim2-server: rendering (the seed table), matching
//! and adoption, owned attributes, manager ids, and the target reconciliation.

mod harness;
mod matching;
mod reconcile;
mod rendering;
