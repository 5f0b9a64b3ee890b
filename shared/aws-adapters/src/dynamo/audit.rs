//! [`ports::AuditStore`] on DynamoDB: audit entries in the audit table (the stack's
//! `AuditTable`, see [`DynamoStore::with_audit_table`]), evidence rows in the
//! evidence table (`EvidenceTable`, see [`DynamoStore::with_evidence_table`]), both
//! under the directory's partition key (key design in [`super`]).
//!
//! Both tables are separate from the main one so IAM can enforce what the code does:
//! every role that writes them holds only `dynamodb:PutItem`, readers
//! `dynamodb:Query`, and none UpdateItem, DeleteItem or BatchWriteItem
//! (scripts/check-iam.py fails the template otherwise). With the conditional puts
//! below, not even PutItem can replace an entry or a snapshot. Neither is purged with
//! a revoked directory: compliance evidence, like the audit trail, outlives it.
//!
//! | item     | `sk`                        | attributes |
//! |----------|-----------------------------|------------|
//! | audit    | `AUDIT#<entry id>`          | `data` (JSON of the `AuditEntry`), `action` (S) |
//! | evidence | `EVID#<fingerprint>`        | `data` (JSON of the `EvidenceRow`), `capturedAt` (S, RFC 3339) |
//!
//! Both are written with PutItem conditional on `attribute_not_exists(pk)`: an audit
//! entry can never be replaced (a second write of the same id is a conflict), and an
//! evidence snapshot already stored for the directory is not stored twice. Entry ids
//! start with the time in nanoseconds, so reading the `AUDIT#` range backwards lists
//! the newest first.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use domain::DirectoryId;
use ports::{AuditEntry, AuditStore, EvidenceRow, StoreError};

use super::codec::{decode, encode, names, s};
use super::keys::{dir_pk, key, DATA, PK, SK};
use super::ops::{conflict, unavailable, unless_condition_failed};
use super::DynamoStore;
use ports::keys::{AUDIT_PREFIX, EVIDENCE_PREFIX};

const ACTION: &str = "action";
const CAPTURED_AT: &str = "capturedAt";

#[async_trait]
impl AuditStore for DynamoStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let what = format!("audit entry {}/{}", entry.directory_id, entry.id);
        let mut item = key(
            dir_pk(&entry.directory_id),
            format!("{AUDIT_PREFIX}{}", entry.id),
        );
        item.insert(DATA.into(), s(encode(entry, &what)?));
        item.insert(ACTION.into(), s(entry.action.as_str()));
        let out = self
            .client()
            .put_item()
            .table_name(self.audit_table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match unless_condition_failed(self.audit_table(), "PutItem", out)? {
            Some(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(())
            }
            None => Err(conflict(self.audit_table(), &what, None)),
        }
    }

    async fn list_audit(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut out_items = Vec::new();
        let mut start = None;
        // Newest first: read the sort key backwards, page by page, until `limit`.
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.audit_table())
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .set_expression_attribute_names(Some(names(&[
                    ("#pk", PK),
                    ("#sk", SK),
                    ("#data", DATA),
                ])))
                .expression_attribute_values(":pk", s(dir_pk(directory)))
                .expression_attribute_values(":prefix", s(AUDIT_PREFIX))
                .projection_expression("#data")
                .scan_index_forward(false)
                .limit(i32::try_from(limit - out_items.len()).unwrap_or(i32::MAX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| unavailable(self.audit_table(), "Query", &e))?;
            self.meter.record_read(out.consumed_capacity());
            for item in out.items() {
                out_items.push(decode(item, &format!("audit entry of {directory}"))?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() && out_items.len() < limit => start = Some(k),
                _ => return Ok(out_items),
            }
        }
    }

    async fn put_evidence(&self, row: &EvidenceRow) -> Result<bool, StoreError> {
        let what = format!("evidence {}/{}", row.directory_id, row.fingerprint);
        let mut item = key(
            dir_pk(&row.directory_id),
            format!("{EVIDENCE_PREFIX}{}", row.fingerprint),
        );
        item.insert(DATA.into(), s(encode(row, &what)?));
        let captured = row
            .captured_at
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StoreError::Corrupt {
                what: what.clone(),
                reason: e.to_string(),
            })?;
        item.insert(CAPTURED_AT.into(), s(captured));
        let table = self.evidence_table();
        let out = self
            .client()
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match unless_condition_failed(table, "PutItem", out)? {
            Some(out) => {
                self.meter.record_write(out.consumed_capacity());
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list_evidence(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<EvidenceRow>, StoreError> {
        let table = self.evidence_table();
        let mut rows = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .set_expression_attribute_names(Some(names(&[
                    ("#pk", PK),
                    ("#sk", SK),
                    ("#data", DATA),
                ])))
                .expression_attribute_values(":pk", s(dir_pk(directory)))
                .expression_attribute_values(":prefix", s(EVIDENCE_PREFIX))
                .projection_expression("#data")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| unavailable(table, "Query", &e))?;
            self.meter.record_read(out.consumed_capacity());
            for item in out.items() {
                rows.push(decode::<EvidenceRow>(
                    item,
                    &format!("evidence of {directory}"),
                )?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        // Keyed by fingerprint, so the time order is made here; a directory has one
        // row per distinct snapshot, a small number.
        rows.sort_by_key(|r| std::cmp::Reverse(r.captured_at));
        rows.truncate(limit);
        Ok(rows)
    }
}
