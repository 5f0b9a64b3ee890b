//! `ports::AuditStore` on [`SqliteStore`]: audit entries in their own append-only
//! table (`AUDIT#<id>`, ids sort by time), evidence rows in their own put-only table
//! `evidence` keyed by their fingerprint (`EVID#<fingerprint>`) so an identical
//! snapshot is stored once. Neither is touched by a purge.

use async_trait::async_trait;
use domain::DirectoryId;
use ports::{AuditEntry, AuditStore, EvidenceRow, StoreError};
use rusqlite::params;

use super::error::conflict;
use super::schema::{decode, dir_pk, encode, limit, AUDIT_PREFIX, EVIDENCE_PREFIX};
use super::SqliteStore;

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let what = format!("audit entry {}/{}", entry.directory_id, entry.id);
        let data = encode(entry, &what)?;
        self.write(|tx| {
            // DO NOTHING, not REPLACE: an existing entry is never touched (the
            // table's triggers would refuse it anyway).
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO audit (pk, sk, data, action) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (pk, sk) DO NOTHING",
                )?
                .execute(params![
                    dir_pk(&entry.directory_id),
                    format!("{AUDIT_PREFIX}{}", entry.id),
                    data,
                    entry.action.as_str()
                ])?;
            if inserted == 0 {
                return Err(conflict(what.clone(), None));
            }
            Ok(())
        })
    }

    async fn list_audit(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT data FROM audit WHERE pk = ?1 ORDER BY sk DESC LIMIT ?2")?;
            let rows = stmt.query_map(params![dir_pk(directory), limit(limit_to)], |r| {
                r.get::<_, String>(0)
            })?;
            let mut out = Vec::new();
            for data in rows {
                out.push(decode(&data?, &format!("audit entry of {directory}"))?);
            }
            Ok(out)
        })
    }

    async fn put_evidence(&self, row: &EvidenceRow) -> Result<bool, StoreError> {
        let what = format!("evidence {}/{}", row.directory_id, row.fingerprint);
        let data = encode(row, &what)?;
        let captured = row
            .captured_at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Corrupt {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        self.write(|tx| {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO evidence (pk, sk, data, captured_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (pk, sk) DO NOTHING",
                )?
                .execute(params![
                    dir_pk(&row.directory_id),
                    format!("{EVIDENCE_PREFIX}{}", row.fingerprint),
                    data,
                    captured
                ])?;
            Ok(inserted > 0)
        })
    }

    async fn list_evidence(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let mut rows: Vec<EvidenceRow> = self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM evidence WHERE pk = ?1")?;
            let found = stmt.query_map(params![dir_pk(directory)], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for data in found {
                out.push(decode(&data?, &format!("evidence of {directory}"))?);
            }
            Ok(out)
        })?;
        // Keyed by fingerprint, so the time order is made here; a directory has one
        // row per distinct snapshot, a small number.
        rows.sort_by_key(|r| std::cmp::Reverse(r.captured_at));
        rows.truncate(limit_to);
        Ok(rows)
    }
}
