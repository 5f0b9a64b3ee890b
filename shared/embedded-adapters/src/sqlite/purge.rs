//! `ports::Store::purge_directory` on [`SqliteStore`]: every item of the directory's
//! partition (`pk = DIR#<dir>`) is counted by kind and deleted in one transaction, so
//! unlike DynamoDB's batched purge it is never left half done. Audit entries and
//! evidence rows live in their own tables and are never touched: the audit trail and
//! the compliance evidence outlive the purge.

use domain::DirectoryId;
use ports::{PurgeReport, StoreError};
use rusqlite::params;

use super::schema::{
    dir_pk, ACCOUNT_PREFIX, AUDIT_PREFIX, BREAKER_PREFIX, CHECKPOINT, DLOG_PREFIX, EVIDENCE_PREFIX,
    GROUP_PREFIX, LEASE, LEDGER_PREFIX, META, OUTBOX_PREFIX, RECEIPT_PREFIX, REFRESH_PREFIX,
    RUN_PREFIX, USER_PREFIX,
};
use super::SqliteStore;

/// Counts one item about to be deleted under its kind, by its sort key (the same
/// tally as the DynamoDB store's purge).
fn tally(report: &mut PurgeReport, sk: &str) {
    let slot = match sk {
        META => {
            report.directory = true;
            return;
        }
        LEASE => &mut report.leases,
        CHECKPOINT => &mut report.checkpoints,
        _ if sk.starts_with(USER_PREFIX) => &mut report.users,
        _ if sk.starts_with(GROUP_PREFIX) => &mut report.groups,
        _ if sk.starts_with(RUN_PREFIX) => &mut report.runs,
        _ if sk.starts_with(OUTBOX_PREFIX) => &mut report.outbox,
        _ if sk.starts_with(DLOG_PREFIX) => &mut report.deliveries,
        _ if sk.starts_with(LEDGER_PREFIX) => &mut report.ledger,
        _ if sk.starts_with(ACCOUNT_PREFIX) => &mut report.accounts,
        _ if sk.starts_with(BREAKER_PREFIX) => &mut report.breakers,
        _ if sk.starts_with(REFRESH_PREFIX) => &mut report.refresh_requests,
        _ if sk.starts_with(RECEIPT_PREFIX) => &mut report.receipts,
        _ if sk.starts_with(EVIDENCE_PREFIX) => &mut report.evidence,
        _ if sk.starts_with(ports::keys::SETUP_PREFIX) => &mut report.setup_links,
        _ => &mut report.other,
    };
    *slot += 1;
}

impl SqliteStore {
    /// See [`ports::Store::purge_directory`].
    pub(crate) fn purge(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError> {
        let pk = dir_pk(directory);
        let report = self.write(|tx| {
            let mut report = PurgeReport::default();
            {
                let mut stmt = tx.prepare_cached("SELECT sk FROM items WHERE pk = ?1")?;
                let rows = stmt.query_map(params![pk], |r| r.get::<_, String>(0))?;
                for sk in rows {
                    let sk = sk?;
                    // Audit entries are in their own table; one here would be foreign.
                    debug_assert!(!sk.starts_with(AUDIT_PREFIX));
                    tally(&mut report, &sk);
                }
            }
            tx.prepare_cached("DELETE FROM items WHERE pk = ?1")?
                .execute(params![pk])?;
            Ok(report)
        })?;
        tracing::debug!(directory = %directory, items = report.total(), "directory purged");
        Ok(report)
    }
}
