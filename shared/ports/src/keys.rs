//! The single-table key design every store family uses: partition keys per directory
//! (`DIR#<id>`), sort-key prefixes per kind of item, and the fingerprint index's
//! partition. One definition, so the DynamoDB and SQLite stores cannot drift apart and
//! the one contract suite specifies both.

use domain::{DirectoryId, EmployeeId, EventId, TargetId};

/// The directory record's sort key.
pub const META: &str = "META";
/// The run lease's sort key.
pub const LEASE: &str = "LEASE";
/// The full run checkpoint's sort key.
pub const CHECKPOINT: &str = "CHECKPOINT";
/// Users, by employee id.
pub const USER_PREFIX: &str = "USER#";
/// Groups, by group id.
pub const GROUP_PREFIX: &str = "GROUP#";
/// Sync runs, by run id (time-ordered).
pub const RUN_PREFIX: &str = "RUN#";
/// Outbox events, by event id.
pub const OUTBOX_PREFIX: &str = "OUTBOX#";
/// Events quarantined out of the outbox, by event id.
pub const QUARANTINE_PREFIX: &str = "QUAR#";
/// Delivery ledger entries, by target and object.
pub const LEDGER_PREFIX: &str = "LEDGER#";
/// Refresh requests of event-based webhooks, by employee id.
pub const REFRESH_PREFIX: &str = "REFRESH#";
/// Webhook delivery receipts, by body digest.
pub const RECEIPT_PREFIX: &str = "RECEIPT#";
/// The delivery log, by target and object.
pub const DLOG_PREFIX: &str = "DLOG#";
/// A target's own account ids, by target and object.
pub const ACCOUNT_PREFIX: &str = "ACCT#";
/// Circuit breakers, by target.
pub const BREAKER_PREFIX: &str = "BREAKER#";
/// Evidence snapshots, by capture time.
pub const EVIDENCE_PREFIX: &str = "EVID#";
/// Audit entries, by time and nonce.
pub const AUDIT_PREFIX: &str = "AUDIT#";
/// Setup links, by link id.
pub const SETUP_PREFIX: &str = "SETUP#";
/// The index partition that lists every directory.
pub const DIRS: &str = "DIRS";

/// A directory's partition key.
pub fn dir_pk(dir: &DirectoryId) -> String {
    format!("DIR#{dir}")
}

/// The fingerprint index's partition of one directory's users.
pub fn fp_pk(dir: &DirectoryId) -> String {
    format!("FP#{dir}")
}

/// A user's sort key.
pub fn user_sk(emp: &EmployeeId) -> String {
    format!("{USER_PREFIX}{emp}")
}

/// An outbox event's sort key.
pub fn outbox_sk(id: &EventId) -> String {
    format!("{OUTBOX_PREFIX}{id}")
}

/// A quarantined event's sort key.
pub fn quarantine_sk(id: &EventId) -> String {
    format!("{QUARANTINE_PREFIX}{id}")
}

/// A (target, object) pair's sort key under `prefix` (ledger, delivery log, account).
/// Target ids cannot contain `#`, so the first `#` after the prefix ends the target
/// and any object id is unambiguous.
pub fn pair_sk(prefix: &str, target: &TargetId, object_id: &str) -> String {
    format!("{prefix}{target}#{object_id}")
}

/// A target's circuit breaker's sort key.
pub fn breaker_sk(target: &TargetId) -> String {
    format!("{BREAKER_PREFIX}{target}")
}

/// A refresh request's sort key.
pub fn refresh_sk(emp: &EmployeeId) -> String {
    format!("{REFRESH_PREFIX}{emp}")
}

/// A setup link's sort key.
pub fn setup_link_sk(id: &str) -> String {
    format!("{SETUP_PREFIX}{id}")
}

/// A receipt's sort key. Receipt keys are hex digests chosen by the engine; any `#`
/// in them would still be unambiguous because nothing follows the key.
pub fn receipt_sk(key: &str) -> String {
    format!("{RECEIPT_PREFIX}{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_the_documented_design() {
        let dir = DirectoryId::parse("acme").unwrap();
        let target = TargetId::parse("app").unwrap();
        assert_eq!(dir_pk(&dir), "DIR#acme");
        assert_eq!(fp_pk(&dir), "FP#acme");
        assert_eq!(user_sk(&EmployeeId::parse("42").unwrap()), "USER#42");
        assert_eq!(
            pair_sk(LEDGER_PREFIX, &target, "usr_1#x"),
            "LEDGER#app#usr_1#x"
        );
        assert_eq!(receipt_sk("ab"), "RECEIPT#ab");
    }
}
