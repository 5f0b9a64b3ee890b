//! The key design of the [module doc](super) in code: attribute names, the sort-key
//! prefixes of the store's own items, and the builders of partition and sort keys.
//! The other item kinds keep their prefixes beside their code (`sync`, `delivery`,
//! `audit`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
pub(crate) use ports::keys::{
    dir_pk, fp_pk, outbox_sk, pair_sk, receipt_sk, refresh_sk, user_sk, DIRS, LEDGER_PREFIX, META,
    OUTBOX_PREFIX, RECEIPT_PREFIX, REFRESH_PREFIX, USER_PREFIX,
};

use domain::TargetId;

/// One item, or one key, as the SDK takes and returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Name of the sparse index that serves fingerprints and the directory listing.
pub const FINGERPRINT_INDEX: &str = "fingerprints";

pub(crate) const PK: &str = "pk";
pub(crate) const SK: &str = "sk";
pub(crate) const DATA: &str = "data";
pub(crate) const VERSION: &str = "version";
pub(crate) const FP: &str = "fp";
pub(crate) const STATE: &str = "state";
/// Compact lifecycle inputs on user items (`status|hire|termination`), projected into
/// the fingerprint index for the daily date sweep.
pub(crate) const LIFECYCLE: &str = "lc";
pub(crate) const SEQ: &str = "seq";
pub(crate) const GSI1PK: &str = "gsi1pk";
pub(crate) const GSI1SK: &str = "gsi1sk";
/// The TTL attribute the table is created with (idempotency keys, leases, old runs).
pub(crate) const EXPIRES_AT: &str = "expiresAt";
pub(crate) const REQUESTED_AT: &str = "requestedAt";

/// Target ids cannot contain `#`, so the first `#` after the prefix ends the target
/// and any object id is unambiguous.
pub(crate) fn ledger_sk(target: &TargetId, object_id: &str) -> String {
    pair_sk(LEDGER_PREFIX, target, object_id)
}

/// The primary key of one item.
pub(crate) fn key(pk: String, sk: String) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EmployeeId};

    #[test]
    fn keys_are_directory_scoped_and_unambiguous() {
        let d = DirectoryId::parse("acme").unwrap();
        assert_eq!(dir_pk(&d), "DIR#acme");
        assert_eq!(user_sk(&EmployeeId::parse("42").unwrap()), "USER#42");
        assert_eq!(fp_pk(&d), "FP#acme");
        let t = TargetId::parse("scim-okta").unwrap();
        assert_eq!(ledger_sk(&t, "usr_1#x"), "LEDGER#scim-okta#usr_1#x");
        assert_eq!(refresh_sk(&EmployeeId::parse("42").unwrap()), "REFRESH#42");
        assert_eq!(receipt_sk("ab12"), "RECEIPT#ab12");
    }
}
