//! `ports::SyncStore` on [`SqliteStore`]: groups with their outbox events, directory
//! events, run records, the sync lease and the full-sync checkpoint.

use async_trait::async_trait;
use domain::{ChangeEvent, DirectoryId, Group, RunId, SyncRun};
use ports::{GroupWrite, QuarantinedEvent, StoreError, SyncStore};
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use super::error::conflict;
use super::schema::{
    data_with_prefix, decode, delete, dir_pk, encode, from_version, get_data, limit, nanos,
    outbox_sk, prefix_end, stored_version, Row, CHECKPOINT, GROUP_PREFIX, LEASE, RUN_PREFIX,
};
use super::{push_events, SqliteStore};
use ports::keys::{quarantine_sk, QUARANTINE_PREFIX};

#[async_trait]
impl SyncStore for SqliteStore {
    async fn list_groups(&self, directory: &DirectoryId) -> Result<Vec<Group>, StoreError> {
        self.read(|c| {
            data_with_prefix(c, &dir_pk(directory), GROUP_PREFIX)?
                .iter()
                .map(|d| decode(d, &format!("group of {directory}")))
                .collect()
        })
    }

    async fn write_group(&self, write: &GroupWrite) -> Result<(), StoreError> {
        let group = &write.group;
        let dir = &group.directory_id;
        let what = format!("group {dir}/{}", group.id);
        let mut row = Row::new(dir_pk(dir), format!("{GROUP_PREFIX}{}", group.id));
        row.data = Some(encode(group, &what)?);
        row.version = Some(from_version(group.version, &what)?);
        self.write(|tx| {
            if stored_version(tx, &row.pk, &row.sk, &what)? != write.expected_version {
                return Err(conflict(what.clone(), write.expected_version));
            }
            row.put(tx)?;
            push_events(tx, dir, &write.events)
        })
    }

    async fn append_events(
        &self,
        directory: &DirectoryId,
        events: &[ChangeEvent],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|tx| push_events(tx, directory, events))
    }

    async fn quarantine_events(
        &self,
        directory: &DirectoryId,
        events: &[QuarantinedEvent],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let pk = dir_pk(directory);
        let mut rows = Vec::with_capacity(events.len());
        for q in events {
            let what = format!("quarantined event {directory}/{}", q.event.id);
            let mut row = Row::new(pk.clone(), quarantine_sk(&q.event.id));
            row.data = Some(encode(q, &what)?);
            rows.push((row, outbox_sk(&q.event.id)));
        }
        // One transaction: the event is either still in the outbox or set aside.
        self.write(|tx| {
            for (row, outbox) in &rows {
                row.put(tx)?;
                delete(tx, &pk, outbox)?;
            }
            Ok(())
        })
    }

    async fn list_quarantined(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<QuarantinedEvent>, StoreError> {
        self.read(|c| {
            data_with_prefix(c, &dir_pk(directory), QUARANTINE_PREFIX)?
                .iter()
                .take(limit_to)
                .map(|d| decode(d, &format!("quarantined event of {directory}")))
                .collect()
        })
    }

    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let what = format!("run {}/{}", run.directory_id, run.id);
        let mut row = Row::new(dir_pk(&run.directory_id), format!("{RUN_PREFIX}{}", run.id));
        row.data = Some(encode(run, &what)?);
        self.write(|tx| row.put(tx))
    }

    async fn get_run(
        &self,
        directory: &DirectoryId,
        id: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        self.read(|c| {
            get_data(c, &dir_pk(directory), &format!("{RUN_PREFIX}{id}"))?
                .map(|d| decode(&d, &format!("run {directory}/{id}")))
                .transpose()
        })
    }

    async fn list_runs(
        &self,
        directory: &DirectoryId,
        limit_to: usize,
    ) -> Result<Vec<SyncRun>, StoreError> {
        // Run ids sort by start time: newest first is the sort key backwards.
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT data FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3 \
                 ORDER BY sk DESC LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    dir_pk(directory),
                    RUN_PREFIX,
                    prefix_end(RUN_PREFIX),
                    limit(limit_to)
                ],
                |r| r.get::<_, Option<String>>(0),
            )?;
            let mut out = Vec::new();
            for data in rows {
                out.push(decode(
                    &data?.unwrap_or_default(),
                    &format!("run of {directory}"),
                )?);
            }
            Ok(out)
        })
    }

    async fn acquire_lease(
        &self,
        directory: &DirectoryId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut row = Row::new(dir_pk(directory), LEASE.into());
        row.holder = Some(holder.to_string());
        row.lease_until = Some(nanos(until));
        self.write(|tx| {
            let current: Option<(Option<String>, Option<i64>)> = tx
                .prepare_cached("SELECT holder, lease_until FROM items WHERE pk = ?1 AND sk = ?2")?
                .query_row(params![row.pk, row.sk], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let free = match current {
                None => true,
                Some((h, until)) => {
                    h.as_deref() == Some(holder) || until.is_none_or(|u| u <= nanos(now))
                }
            };
            if free {
                row.put(tx)?;
            }
            Ok(free)
        })
    }

    async fn release_lease(&self, directory: &DirectoryId, holder: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            // Someone else's lease now (ours expired) is theirs to release.
            tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2 AND holder = ?3")?
                .execute(params![dir_pk(directory), LEASE, holder])?;
            Ok(())
        })
    }

    async fn get_checkpoint(&self, directory: &DirectoryId) -> Result<Option<String>, StoreError> {
        self.read(|c| get_data(c, &dir_pk(directory), CHECKPOINT))
    }

    async fn put_checkpoint(&self, directory: &DirectoryId, data: &str) -> Result<(), StoreError> {
        let mut row = Row::new(dir_pk(directory), CHECKPOINT.into());
        row.data = Some(data.to_string());
        self.write(|tx| row.put(tx))
    }

    async fn clear_checkpoint(&self, directory: &DirectoryId) -> Result<(), StoreError> {
        self.write(|tx| delete(tx, &dir_pk(directory), CHECKPOINT).map(drop))
    }
}
