//! `ports::Store` on [`SqliteStore`]: directories, users with their outbox events,
//! the ledger, refresh requests and receipts.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, Fingerprint, TargetId,
};
use ports::{
    LedgerAdvance, Lifecycle, PurgeReport, RefreshRequest, Store, StoreError, UserFingerprint,
    UserWrite,
};
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use super::error::{conflict, corrupt, SqliteError};
use super::schema::{
    data_with_prefix, decode, delete, dir_pk, encode, fp_pk, from_nanos, from_version, get_data,
    limit, nanos, outbox_sk, pair_sk, prefix_end, receipt_sk, refresh_sk, stored_version,
    to_version, user_sk, Row, DIRS, LEDGER_PREFIX, META, RECEIPT_PREFIX, REFRESH_PREFIX,
    USER_PREFIX,
};
use super::{push_events, SqliteStore};

/// Receipts recorded between two sweeps of a directory's expired ones (DynamoDB's TTL
/// does this there); sweeping at every insert would cost a pass each time.
const RECEIPT_SWEEP_EVERY: u64 = 256;

/// The row of a user: its JSON and the attributes the fingerprint index covers.
fn user_row(user: &DirectoryUser, what: &str) -> Result<Row, SqliteError> {
    let dir = &user.directory_id;
    let mut row = Row::new(dir_pk(dir), user_sk(&user.employee_id));
    row.data = Some(encode(user, what)?);
    row.version = Some(from_version(user.version, what)?);
    row.fp = Some(user.fingerprint.as_str().to_string());
    row.state = Some(user.state.as_str());
    row.lc = Some(Lifecycle::of(user).to_compact());
    row.gsi1pk = Some(fp_pk(dir));
    row.gsi1sk = Some(user.employee_id.to_string());
    Ok(row)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get_directory(&self, id: &DirectoryId) -> Result<Option<Directory>, StoreError> {
        self.read(|c| {
            get_data(c, &dir_pk(id), META)?
                .map(|d| decode(&d, &format!("directory {id}")))
                .transpose()
        })
    }

    async fn put_directory(
        &self,
        directory: &Directory,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let what = format!("directory {}", directory.id);
        let pk = dir_pk(&directory.id);
        let mut row = Row::new(pk.clone(), META.into());
        row.data = Some(encode(directory, &what)?);
        row.version = Some(from_version(directory.version, &what)?);
        row.gsi1pk = Some(DIRS.into());
        row.gsi1sk = Some(directory.id.to_string());
        self.write(|tx| {
            if stored_version(tx, &pk, META, &what)? != expected_version {
                return Err(conflict(what.clone(), expected_version));
            }
            row.put(tx)
        })
    }

    async fn list_directories(&self) -> Result<Vec<Directory>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT gsi1sk, data FROM items WHERE gsi1pk = ?1 ORDER BY gsi1sk",
            )?;
            let rows = stmt.query_map(params![DIRS], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, data) = row?;
                let what = format!("directory {id}");
                out.push(decode(&data.unwrap_or_default(), &what)?);
            }
            Ok(out)
        })
    }

    async fn get_user(
        &self,
        directory: &DirectoryId,
        employee: &EmployeeId,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        self.read(|c| {
            get_data(c, &dir_pk(directory), &user_sk(employee))?
                .map(|d| decode(&d, &format!("user {directory}/{employee}")))
                .transpose()
        })
    }

    async fn list_users(&self, directory: &DirectoryId) -> Result<Vec<DirectoryUser>, StoreError> {
        self.read(|c| {
            data_with_prefix(c, &dir_pk(directory), USER_PREFIX)?
                .iter()
                .map(|d| decode(d, &format!("user of {directory}")))
                .collect()
        })
    }

    async fn user_fingerprints(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<UserFingerprint>, StoreError> {
        self.read(|c| {
            // Served by the covering index alone, as the GSI query reads no `data`.
            let mut stmt = c.prepare_cached(
                "SELECT gsi1sk, version, fp, state, lc FROM items WHERE gsi1pk = ?1 \
                 ORDER BY gsi1sk",
            )?;
            let rows = stmt.query_map(params![fp_pk(directory)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (emp, version, fp, state, lc) = row?;
                let what = format!("fingerprint of user {directory}/{emp}");
                out.push(UserFingerprint {
                    employee_id: EmployeeId::parse(&emp)
                        .map_err(|e| corrupt(&what, e.to_string()))?,
                    version: to_version(version, &what)?,
                    fingerprint: Fingerprint::from_stored(
                        fp.ok_or_else(|| corrupt(&what, "no `fp`"))?,
                    ),
                    state: state
                        .as_deref()
                        .and_then(domain::UserState::from_name)
                        .ok_or_else(|| corrupt(&what, "no known `state`"))?,
                    lifecycle: lc
                        .as_deref()
                        .map(Lifecycle::from_compact)
                        .unwrap_or_default(),
                });
            }
            Ok(out)
        })
    }

    async fn write_user(&self, write: &UserWrite) -> Result<(), StoreError> {
        let user = &write.user;
        let what = format!("user {}/{}", user.directory_id, user.employee_id);
        let row = user_row(user, &what)?;
        self.write(|tx| {
            if stored_version(tx, &row.pk, &row.sk, &what)? != write.expected_version {
                return Err(conflict(what.clone(), write.expected_version));
            }
            row.put(tx)?;
            push_events(tx, &user.directory_id, &write.events)
        })
    }

    async fn pending_events(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT sk, data FROM items WHERE pk = ?1 AND seq IS NOT NULL \
                 ORDER BY seq, sk LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![dir_pk(directory), limit(limit_to)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (sk, data) = row?;
                let what = format!("outbox event {directory}/{sk}");
                out.push(decode(&data.unwrap_or_default(), &what)?);
            }
            Ok(out)
        })
    }

    async fn mark_published(
        &self,
        directory: &DirectoryId,
        ids: &[EventId],
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let pk = dir_pk(directory);
        self.write(|tx| {
            for id in ids {
                delete(tx, &pk, &outbox_sk(id))?;
            }
            Ok(())
        })
    }

    async fn ledger_get(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        let what = format!("ledger {directory}/{target}/{object_id}");
        self.read(|c| {
            stored_version(
                c,
                &dir_pk(directory),
                &pair_sk(LEDGER_PREFIX, target, object_id),
                &what,
            )
        })
    }

    async fn ledger_advance(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        version: u64,
    ) -> Result<LedgerAdvance, StoreError> {
        let what = format!("ledger {directory}/{target}/{object_id}");
        let mut row = Row::new(dir_pk(directory), pair_sk(LEDGER_PREFIX, target, object_id));
        row.version = Some(from_version(version, &what)?);
        self.write(|tx| match stored_version(tx, &row.pk, &row.sk, &what)? {
            Some(current) if current >= version => Ok(LedgerAdvance::AlreadyAt { current }),
            _ => {
                row.put(tx)?;
                Ok(LedgerAdvance::Advanced)
            }
        })
    }

    async fn record_refresh_requests(
        &self,
        directory: &DirectoryId,
        employees: &[EmployeeId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if employees.is_empty() {
            return Ok(());
        }
        let pk = dir_pk(directory);
        self.write(|tx| {
            for emp in employees {
                let mut row = Row::new(pk.clone(), refresh_sk(emp));
                row.requested_at = Some(nanos(at));
                row.put(tx)?;
            }
            Ok(())
        })
    }

    async fn pending_refresh_requests(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<RefreshRequest>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT sk, requested_at FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3 \
                 ORDER BY sk LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    dir_pk(directory),
                    REFRESH_PREFIX,
                    prefix_end(REFRESH_PREFIX),
                    limit(limit_to)
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)),
            )?;
            let mut out = Vec::new();
            for row in rows {
                let (sk, at) = row?;
                let emp = sk.strip_prefix(REFRESH_PREFIX).unwrap_or(&sk);
                let what = format!("refresh request {directory}/{emp}");
                out.push(RefreshRequest {
                    employee_id: EmployeeId::parse(emp)
                        .map_err(|e| corrupt(&what, e.to_string()))?,
                    requested_at: from_nanos(
                        at.ok_or_else(|| corrupt(&what, "no `requested_at`"))?,
                        &what,
                    )?,
                });
            }
            Ok(out)
        })
    }

    async fn clear_refresh_requests(
        &self,
        directory: &DirectoryId,
        requests: &[RefreshRequest],
    ) -> Result<(), StoreError> {
        if requests.is_empty() {
            return Ok(());
        }
        let pk = dir_pk(directory);
        self.write(|tx| {
            // Only a request not renewed since it was read goes.
            let mut stmt = tx.prepare_cached(
                "DELETE FROM items WHERE pk = ?1 AND sk = ?2 AND requested_at = ?3",
            )?;
            for r in requests {
                stmt.execute(params![
                    pk,
                    refresh_sk(&r.employee_id),
                    nanos(r.requested_at)
                ])?;
            }
            Ok(())
        })
    }

    async fn has_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.read(|c| {
            let expires: Option<Option<i64>> = c
                .prepare_cached("SELECT expires_at FROM items WHERE pk = ?1 AND sk = ?2")?
                .query_row(params![dir_pk(directory), receipt_sk(key)], |r| r.get(0))
                .optional()?;
            // Expired but not yet swept counts as absent, as with DynamoDB's TTL.
            Ok(expires.flatten().is_some_and(|e| e > now.unix_timestamp()))
        })
    }

    async fn record_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let pk = dir_pk(directory);
        let mut row = Row::new(pk.clone(), receipt_sk(key));
        row.expires_at = Some(expires_at.unix_timestamp());
        let now_secs = now.unix_timestamp();
        let sweep = self.receipts_recorded.fetch_add(1, Ordering::Relaxed) % RECEIPT_SWEEP_EVERY
            == RECEIPT_SWEEP_EVERY - 1;
        self.write(|tx| {
            let expires: Option<Option<i64>> = tx
                .prepare_cached("SELECT expires_at FROM items WHERE pk = ?1 AND sk = ?2")?
                .query_row(params![row.pk, row.sk], |r| r.get(0))
                .optional()?;
            if expires.flatten().is_some_and(|e| e > now_secs) {
                return Ok(false);
            }
            if sweep {
                tx.prepare_cached(
                    "DELETE FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3 \
                     AND expires_at <= ?4",
                )?
                .execute(params![
                    pk,
                    RECEIPT_PREFIX,
                    prefix_end(RECEIPT_PREFIX),
                    now_secs
                ])?;
            }
            row.put(tx)?;
            Ok(true)
        })
    }

    async fn purge_directory(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError> {
        self.purge(directory)
    }
}
