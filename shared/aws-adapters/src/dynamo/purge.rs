//! [`ports::Store::purge_directory`] on the DynamoDB table: every item of the
//! directory's partition (`pk = DIR#<dir>`) is read by key only and deleted with
//! BatchWriteItem, 25 keys a call, keys DynamoDB leaves unprocessed (throttling)
//! retried with jittered backoff a bounded number of times.
//!
//! The directory record (`META`) goes last: a purge interrupted midway leaves the
//! revoked directory listed, so the next retention sweep finds it and finishes. Audit
//! entries (`AUDIT#`, from before they moved to their own table) are never deleted:
//! the audit trail outlives the purge.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use domain::DirectoryId;
use ports::{PurgeReport, StoreError};

use super::codec::{names, s, Item};
use super::keys::{
    dir_pk, LEDGER_PREFIX, META, OUTBOX_PREFIX, PK, RECEIPT_PREFIX, REFRESH_PREFIX, SK, USER_PREFIX,
};
use super::ops::{built, QuerySpec};
use super::DynamoStore;

/// Audit entries written to the main table before the audit table existed; kept.
const LEGACY_AUDIT_PREFIX: &str = ports::keys::AUDIT_PREFIX;

/// Counts one item about to be deleted under its kind, by its sort key.
fn tally(report: &mut PurgeReport, sk: &str) {
    let slot = match sk {
        META => {
            report.directory = true;
            return;
        }
        "LEASE" => &mut report.leases,
        "CHECKPOINT" => &mut report.checkpoints,
        _ if sk.starts_with(USER_PREFIX) => &mut report.users,
        _ if sk.starts_with("GROUP#") => &mut report.groups,
        _ if sk.starts_with("RUN#") => &mut report.runs,
        _ if sk.starts_with(OUTBOX_PREFIX) => &mut report.outbox,
        _ if sk.starts_with("DLOG#") => &mut report.deliveries,
        _ if sk.starts_with(LEDGER_PREFIX) => &mut report.ledger,
        _ if sk.starts_with("ACCT#") => &mut report.accounts,
        _ if sk.starts_with("BREAKER#") => &mut report.breakers,
        _ if sk.starts_with(REFRESH_PREFIX) => &mut report.refresh_requests,
        _ if sk.starts_with(RECEIPT_PREFIX) => &mut report.receipts,
        _ if sk.starts_with("EVID#") => &mut report.evidence,
        _ if sk.starts_with(ports::keys::SETUP_PREFIX) => &mut report.setup_links,
        _ => &mut report.other,
    };
    *slot += 1;
}

impl DynamoStore {
    /// See [`ports::Store::purge_directory`].
    pub(crate) async fn purge(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError> {
        let items = self
            .query_all(QuerySpec {
                index: None,
                condition: "#pk = :pk",
                names: names(&[("#pk", PK), ("#sk", SK)]),
                values: HashMap::from([(":pk".to_string(), s(dir_pk(directory)))]),
                projection: "#pk, #sk",
            })
            .await?;
        let mut report = PurgeReport::default();
        let mut keys: Vec<Item> = Vec::with_capacity(items.len());
        let mut meta = None;
        for item in items {
            let Some(sk) = item.get(SK).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            if sk.starts_with(LEGACY_AUDIT_PREFIX) {
                continue;
            }
            tally(&mut report, sk);
            if sk == META {
                meta = Some(item);
            } else {
                keys.push(item);
            }
        }
        self.batch_write(deletes(keys)?).await?;
        if let Some(meta) = meta {
            self.batch_write(deletes(vec![meta])?).await?;
        }
        Ok(report)
    }
}

/// The BatchWriteItem requests that delete `keys`.
fn deletes(keys: Vec<Item>) -> Result<Vec<WriteRequest>, StoreError> {
    keys.into_iter()
        .map(|key| {
            Ok(WriteRequest::builder()
                .delete_request(built(DeleteRequest::builder().set_key(Some(key)).build())?)
                .build())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sort_key_is_counted_under_its_kind() {
        let mut r = PurgeReport::default();
        for sk in [
            "META",
            "USER#1",
            "USER#2",
            "GROUP#g",
            "RUN#r",
            "OUTBOX#e",
            "DLOG#app#u",
            "LEDGER#app#u",
            "ACCT#app#u",
            "BREAKER#app",
            "CHECKPOINT",
            "LEASE",
            "REFRESH#3",
            "RECEIPT#x",
            "EVID#f",
            "SOMETHING#new",
        ] {
            tally(&mut r, sk);
        }
        assert!(r.directory);
        assert_eq!(r.users, 2);
        assert_eq!(r.other, 1);
        assert_eq!(r.total(), 16);
    }
}
