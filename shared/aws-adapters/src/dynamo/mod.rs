//! [`DynamoStore`]: `ports::Store`, `ports::SyncStore`, `ports::DeliveryStore` and
//! `ports::AuditStore` on one DynamoDB table (audit entries on their own table).
//!
//! # Key design
//!
//! Every item of a directory lives in that directory's partition, so no key is shared
//! between tenants and one Query reads one directory's users, outbox or ledger.
//!
//! | item        | `pk`         | `sk`                                | other attributes |
//! |-------------|--------------|-------------------------------------|------------------|
//! | directory   | `DIR#<dir>`  | `META`                              | `data` (JSON of the `Directory`), `version` (N), `gsi1pk` = `DIRS`, `gsi1sk` = `<dir>` |
//! | user        | `DIR#<dir>`  | `USER#<employee id>`                | `data` (JSON of the `DirectoryUser`), `version` (N), `fp` (S), `state` (S), `lc` (S, `status|hire|termination`), `gsi1pk` = `FP#<dir>`, `gsi1sk` = `<employee id>` |
//! | outbox      | `DIR#<dir>`  | `OUTBOX#<event id>`                 | `data` (JSON of the `ChangeEvent`), `seq` (N) |
//! | ledger      | `DIR#<dir>`  | `LEDGER#<target id>#<object id>`    | `version` (N) |
//! | refresh     | `DIR#<dir>`  | `REFRESH#<employee id>`             | `requestedAt` (N, unix nanoseconds) |
//! | group, run, lease, checkpoint | `DIR#<dir>` | see `dynamo/sync.rs` | |
//! | receipt     | `DIR#<dir>`  | `RECEIPT#<key>`                     | `expiresAt` (N, unix seconds; the table's TTL) |
//! | delivery log, target account, breaker | `DIR#<dir>` | `DLOG#…`, `ACCT#…`, `BREAKER#…`: see `dynamo/delivery.rs` | |
//! | evidence    | `DIR#<dir>`  | `EVID#<fingerprint>`: see `dynamo/audit.rs` | |
//! | setup link  | `DIR#<dir>`  | `SETUP#<link id>`: see `dynamo/setup_links.rs` | |
//!
//! The sparse global secondary index [`FINGERPRINT_INDEX`] (`fingerprints`: hash
//! `gsi1pk`, range `gsi1sk`, projection INCLUDE `version`, `fp`, `state`, `lc`) serves two
//! listings without reading any `data`:
//! - `user_fingerprints`: Query `gsi1pk = FP#<dir>`. A full reconciliation of an
//!   unchanged directory reads these few attributes per user (a few dozen bytes)
//!   instead of each user item (DESIGN guarantee 3).
//! - `list_directories`: Query `gsi1pk = DIRS` for the ids, then BatchGetItem (strongly
//!   consistent) of the directory items. No Scan of the table.
//!
//! Index reads are eventually consistent: a user or directory written a moment ago may
//! show its previous projection. That is safe here: a stale fingerprint makes the
//! engine attempt a conditional write that loses with `Conflict` (it re-reads), and a
//! new directory shows up in the listing within a second.
//!
//! Ordering: `list_users` (table, `USER#<employee id>`) and `user_fingerprints` (index,
//! `<employee id>`) both sort by the employee id's bytes, the same order as
//! `EmployeeId`'s `Ord`, so the two listings line up entry by entry.
//!
//! # Writes
//!
//! - Directories and users are written with a condition: `attribute_not_exists(pk)`
//!   when the writer expects no item, else `version = :expected`. A failed condition is
//!   `StoreError::Conflict`.
//! - `write_user` is one TransactWriteItems: the conditional Put of the user and an
//!   unconditional Put of each outbox event, so the events exist exactly when the user
//!   change does. A transaction holds at most 100 items, hence at most
//!   [`MAX_EVENTS_PER_WRITE`] events per user write.
//! - Outbox `seq` is the wall clock in nanoseconds at write time, made strictly
//!   increasing within a process, plus the event's index in the write; pending events
//!   are returned in `seq` order (then by id). `pending_events` reads the directory's
//!   whole outbox (it is normally empty or tiny) and truncates.
//! - `mark_published` deletes outbox items one DeleteItem each (a few at a time),
//!   which needs only `dynamodb:DeleteItem` and makes unknown ids harmless.
//! - `ledger_advance` is one UpdateItem `SET version = :v` conditional on
//!   `attribute_not_exists(version) OR version < :v`; when the condition fails the old
//!   item comes back with the error (`ReturnValuesOnConditionCheckFailure`), so the
//!   current version is known without a second read.
//!
//! - Refresh requests are one PutItem per employee (the latest stamp wins), listed
//!   with a strongly consistent Query, and cleared with a DeleteItem conditional on
//!   `requestedAt` still being the value read, so a request renewed while the poller
//!   was fetching survives.
//! - `record_receipt` is one PutItem conditional on `attribute_not_exists(pk) OR
//!   expiresAt <= :now`: DynamoDB's TTL sweep may lag by a day or two, so an expired
//!   receipt must count as absent before it is swept. `has_receipt` reads the item
//!   strongly consistently and applies the same expiry rule.
//!
//! Every call asks for `ReturnConsumedCapacity = TOTAL`; [`DynamoStore::consumed`]
//! sums what DynamoDB reported, for benchmarks and cost estimates.
//!
//! # Where the code lives
//!
//! - `keys`: attribute names, sort-key prefixes, key builders (the table above).
//! - `codec`: attribute values, the JSON in `data`, the items of users and events.
//! - `metering`: reported and metered capacity units ([`DynamoStore::metered`]).
//! - `ops`: the metered operations every item kind is read and written with (puts,
//!   conditional puts, gets, paged queries, batches that retry unprocessed work, the
//!   transaction with outbox events), and the one mapping of their failures to
//!   `ports::StoreError`.
//! - `store`: [`DynamoStore`] and `ports::Store`; `sync`, `delivery`, `audit`,
//!   `setup_links` and `purge`: the other ports and the directory purge.
//! - `testing` (feature `testing` only): table creation and bulk import for tests,
//!   benchmarks and tools, so no Lambda carries them.

mod audit;
mod codec;
mod delivery;
mod keys;
mod metering;
mod ops;
mod purge;
mod setup_links;
mod store;
mod sync;
#[cfg(feature = "testing")]
mod testing;

pub use keys::FINGERPRINT_INDEX;
pub use store::{DynamoStore, MAX_EVENTS_PER_WRITE};
#[cfg(feature = "testing")]
pub use testing::{create_audit_table, create_evidence_table, create_table};
