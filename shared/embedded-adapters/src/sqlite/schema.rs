//! The schema (see the [module doc](super)), the keys of every item kind, and the
//! values in and out of rows: the JSON in `data`, versions, times and the compact
//! lifecycle text, encoded exactly as the DynamoDB store encodes them.

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use super::error::{corrupt, SqliteError};
pub(crate) use ports::keys::{
    breaker_sk, dir_pk, fp_pk, outbox_sk, pair_sk, receipt_sk, refresh_sk, user_sk, ACCOUNT_PREFIX,
    AUDIT_PREFIX, BREAKER_PREFIX, CHECKPOINT, DIRS, DLOG_PREFIX, EVIDENCE_PREFIX, GROUP_PREFIX,
    LEASE, LEDGER_PREFIX, META, OUTBOX_PREFIX, RECEIPT_PREFIX, REFRESH_PREFIX, RUN_PREFIX,
    USER_PREFIX,
};

/// The schema this code reads and writes (`PRAGMA user_version`).
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Tables and indexes, created when missing.
///
/// `items` is the DynamoDB table: one row per item, `(pk, sk)` its key, the attributes
/// the DynamoDB design keeps outside `data` as columns (NULL where an item kind has
/// none, as an absent attribute). The partial index `fingerprints` is the GSI of the
/// same name, covering (`version`, `fp`, `state`, `lc`) as the GSI's INCLUDE
/// projection does, so the fingerprint listing reads no `data`. `outbox` orders a
/// directory's pending events. `audit` is the separate audit table; its triggers make
/// entries append-only in the database itself, as the AuditTable's IAM grants do.
/// `evidence` is the EvidenceTable, put-only by trigger the same way; evidence rows a
/// database kept in `items` before it existed move there when it is opened.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT,
    version INTEGER,
    fp TEXT,
    state TEXT,
    lc TEXT,
    gsi1pk TEXT,
    gsi1sk TEXT,
    seq INTEGER,
    status TEXT,
    expires_at INTEGER,
    requested_at INTEGER,
    holder TEXT,
    lease_until INTEGER,
    account_id TEXT,
    captured_at TEXT,
    PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS fingerprints ON items (gsi1pk, gsi1sk, version, fp, state, lc)
    WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS outbox ON items (pk, seq, sk) WHERE seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT NOT NULL,
    action TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
);
CREATE TRIGGER IF NOT EXISTS audit_entries_are_not_updated BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_entries_are_not_deleted BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
CREATE TABLE IF NOT EXISTS evidence (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    data TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
);
CREATE TRIGGER IF NOT EXISTS evidence_rows_are_not_updated BEFORE UPDATE ON evidence
    BEGIN SELECT RAISE(ABORT, 'evidence rows are put-only'); END;
CREATE TRIGGER IF NOT EXISTS evidence_rows_are_not_deleted BEFORE DELETE ON evidence
    BEGIN SELECT RAISE(ABORT, 'evidence rows are put-only'); END;
INSERT OR IGNORE INTO evidence (pk, sk, data, captured_at)
    SELECT pk, sk, data, captured_at FROM items
    WHERE sk >= 'EVID#' AND sk < 'EVID$' AND data IS NOT NULL AND captured_at IS NOT NULL;
DELETE FROM items WHERE sk >= 'EVID#' AND sk < 'EVID$';
";

/// The exclusive upper bound of the sort keys starting with `prefix`: the prefix with
/// its last character raised by one (`USER#` -> `USER$`). Text compares bytewise
/// (SQLite's BINARY collation), so `sk >= prefix AND sk < end` is a begins-with that
/// the primary key's index serves as a range.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop().expect("prefixes are not empty");
    let next = char::from_u32(u32::from(last) + 1).expect("prefixes end in ASCII");
    chars.push(next);
    chars.into_iter().collect()
}

/// One item as written: its key and the attributes it has. Written whole with
/// `INSERT OR REPLACE`, as DynamoDB's PutItem replaces an item whole.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub pk: String,
    pub sk: String,
    pub data: Option<String>,
    pub version: Option<i64>,
    pub fp: Option<String>,
    pub state: Option<&'static str>,
    pub lc: Option<String>,
    pub gsi1pk: Option<String>,
    pub gsi1sk: Option<String>,
    pub seq: Option<i64>,
    pub status: Option<&'static str>,
    pub expires_at: Option<i64>,
    pub requested_at: Option<i64>,
    pub holder: Option<String>,
    pub lease_until: Option<i64>,
    pub account_id: Option<String>,
    pub captured_at: Option<String>,
}

impl Row {
    /// An item with only its key.
    pub(crate) fn new(pk: String, sk: String) -> Self {
        Self {
            pk,
            sk,
            ..Self::default()
        }
    }

    /// Writes the item, replacing any item with the same key.
    pub(crate) fn put(&self, conn: &Connection) -> Result<(), SqliteError> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO items (pk, sk, data, version, fp, state, lc, gsi1pk, \
             gsi1sk, seq, status, expires_at, requested_at, holder, lease_until, account_id, \
             captured_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, \
             ?15, ?16, ?17)",
        )?
        .execute(params![
            self.pk,
            self.sk,
            self.data,
            self.version,
            self.fp,
            self.state,
            self.lc,
            self.gsi1pk,
            self.gsi1sk,
            self.seq,
            self.status,
            self.expires_at,
            self.requested_at,
            self.holder,
            self.lease_until,
            self.account_id,
            self.captured_at,
        ])?;
        Ok(())
    }
}

/// The stored version of an item, None when there is none.
pub(crate) fn stored_version(
    conn: &Connection,
    pk: &str,
    sk: &str,
    what: &str,
) -> Result<Option<u64>, SqliteError> {
    let v: Option<Option<i64>> = conn
        .prepare_cached("SELECT version FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row(params![pk, sk], |r| r.get(0))
        .optional()?;
    match v {
        None => Ok(None),
        Some(v) => Ok(Some(to_version(v, what)?)),
    }
}

/// Deletes one item; deleting a missing one is no error. Returns whether it existed.
pub(crate) fn delete(conn: &Connection, pk: &str, sk: &str) -> Result<bool, SqliteError> {
    let n = conn
        .prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
        .execute(params![pk, sk])?;
    Ok(n > 0)
}

/// The `data` of one item.
pub(crate) fn get_data(
    conn: &Connection,
    pk: &str,
    sk: &str,
) -> Result<Option<String>, SqliteError> {
    let data: Option<Option<String>> = conn
        .prepare_cached("SELECT data FROM items WHERE pk = ?1 AND sk = ?2")?
        .query_row(params![pk, sk], |r| r.get(0))
        .optional()?;
    Ok(data.flatten())
}

/// The `data` of every item of `pk` whose sort key starts with `prefix`, in sort-key
/// order.
pub(crate) fn data_with_prefix(
    conn: &Connection,
    pk: &str,
    prefix: &str,
) -> Result<Vec<String>, SqliteError> {
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM items WHERE pk = ?1 AND sk >= ?2 AND sk < ?3 ORDER BY sk",
    )?;
    let rows = stmt.query_map(params![pk, prefix, prefix_end(prefix)], |r| {
        r.get::<_, Option<String>>(0)
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?.unwrap_or_default());
    }
    Ok(out)
}

/// A version column as the ports' `u64`.
pub(crate) fn to_version(v: Option<i64>, what: &str) -> Result<u64, SqliteError> {
    v.and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| corrupt(what, "no non-negative `version`"))
}

/// A port's `u64` version as a column value (SQLite integers are signed).
pub(crate) fn from_version(v: u64, what: &str) -> Result<i64, SqliteError> {
    i64::try_from(v).map_err(|_| corrupt(what, "version beyond what SQLite stores"))
}

/// A count for `LIMIT` (usize::MAX means "no limit").
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A time as unix nanoseconds (leases, refresh stamps compare at full precision).
/// Times past 2262 do not fit and are clamped; no lease or request lasts that long.
pub(crate) fn nanos(at: OffsetDateTime) -> i64 {
    let n = at.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// The inverse of [`nanos`].
pub(crate) fn from_nanos(n: i64, what: &str) -> Result<OffsetDateTime, SqliteError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
        .map_err(|_| corrupt(what, "time out of range"))
}

/// The value kept as JSON in an item's `data`.
pub(crate) fn decode<T: DeserializeOwned>(json: &str, what: &str) -> Result<T, SqliteError> {
    serde_json::from_str(json).map_err(|e| {
        // serde's message can quote stored values (HR data); keep only the position.
        corrupt(
            what,
            format!(
                "`data` is not the expected JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

pub(crate) fn encode<T: Serialize>(value: &T, what: &str) -> Result<String, SqliteError> {
    serde_json::to_string(value).map_err(|e| corrupt(what, format!("cannot serialize: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EmployeeId, TargetId};
    use ports::Lifecycle;

    #[test]
    fn keys_match_the_dynamodb_design() {
        let d = DirectoryId::parse("acme").unwrap();
        assert_eq!(dir_pk(&d), "DIR#acme");
        assert_eq!(fp_pk(&d), "FP#acme");
        assert_eq!(user_sk(&EmployeeId::parse("42").unwrap()), "USER#42");
        let t = TargetId::parse("scim-okta").unwrap();
        assert_eq!(
            pair_sk(LEDGER_PREFIX, &t, "usr_1#x"),
            "LEDGER#scim-okta#usr_1#x"
        );
    }

    #[test]
    fn a_prefix_range_holds_exactly_the_keys_with_that_prefix() {
        let end = prefix_end("USER#");
        assert_eq!(end, "USER$");
        for inside in ["USER#", "USER#1", "USER#~~~", "USER#\u{10FFFF}"] {
            assert!(inside >= "USER#" && inside < end.as_str(), "{inside}");
        }
        for outside in ["USER", "USER$", "USERS", "UTOP"] {
            assert!(!(outside >= "USER#" && outside < end.as_str()), "{outside}");
        }
    }

    #[test]
    fn lifecycle_text_round_trips() {
        let l = Lifecycle {
            status: Some("Active".into()),
            hire_date: Some(time::macros::date!(2024 - 03 - 01)),
            termination_date: None,
        };
        assert_eq!(Lifecycle::from_compact(&l.to_compact()), l);
        assert_eq!(Lifecycle::from_compact("||"), Lifecycle::default());
    }
}
