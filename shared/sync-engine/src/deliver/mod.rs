//! Delivering changes to a directory's targets: dispatch (state transfer, ledger,
//! breaker, delivery log), the retry policy and path, replays, and [`targets`] with
//! one module per target kind holding its delivery and its probe.

pub mod attempt;
pub mod dispatch;
pub mod replay;
pub mod retry;
pub mod targets;
