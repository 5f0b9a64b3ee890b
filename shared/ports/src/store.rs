//! The store: directories, users, the outbox, the delivery ledger, webhook refresh
//! requests and delivery receipts, all keyed by directory so tenants never share a key.

use async_trait::async_trait;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventId, Fingerprint, TargetId,
    UserState,
};
use time::{Date, OffsetDateTime};

use crate::delivery_store::DeliveryStore;
pub use crate::store_error::StoreError;
use crate::sync_store::SyncStore;

/// The compact projection a full sync compares against: no user item is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFingerprint {
    /// Which employee.
    pub employee_id: EmployeeId,
    /// Stored version.
    pub version: u64,
    /// Stored fingerprint.
    pub fingerprint: Fingerprint,
    /// Stored state.
    pub state: UserState,
    /// The inputs of the date-driven state (BambooHR status, hire and termination
    /// dates), so a daily sweep finds the users whose state changes today without
    /// reading a user item.
    pub lifecycle: Lifecycle,
}

/// What a user's date-driven state depends on besides today and the directory's
/// pre-start window.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lifecycle {
    /// BambooHR status (`Active`, `Inactive`).
    pub status: Option<String>,
    /// Hire date.
    pub hire_date: Option<Date>,
    /// Termination date.
    pub termination_date: Option<Date>,
}

impl Lifecycle {
    /// The lifecycle inputs of a user.
    pub fn of(user: &DirectoryUser) -> Self {
        Self {
            status: user.employment_status.clone(),
            hire_date: user.hire_date,
            termination_date: user.termination_date,
        }
    }

    /// The compact text both store families keep on a user item, so the fingerprint
    /// listing carries it without reading the user: `status|YYYY-MM-DD|YYYY-MM-DD`,
    /// empty parts for absent values. Status text never contains `|` in BambooHR (it
    /// is `Active`/`Inactive`); one that does is dropped rather than mis-split.
    pub fn to_compact(&self) -> String {
        let status = self
            .status
            .as_deref()
            .filter(|s| !s.contains('|'))
            .unwrap_or("");
        let date = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
        format!(
            "{status}|{}|{}",
            date(self.hire_date),
            date(self.termination_date)
        )
    }

    /// The inverse of [`Lifecycle::to_compact`]; unparsable parts read as absent.
    pub fn from_compact(text: &str) -> Self {
        let mut parts = text.split('|');
        let status = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let mut date = || parts.next().and_then(|p| Date::parse(p, &format).ok());
        let hire_date = date();
        let termination_date = date();
        Self {
            status,
            hire_date,
            termination_date,
        }
    }
}

/// A user write and the events it causes, applied atomically: the events land in the
/// outbox in the same write as the user, so a crash before publishing loses nothing.
#[derive(Debug, Clone)]
pub struct UserWrite {
    /// The new state of the user; `user.version` must be `expected_version + 1` (or 1).
    pub user: DirectoryUser,
    /// The version the writer read; None means the user must not exist yet.
    pub expected_version: Option<u64>,
    /// Outbox entries written with the user.
    pub events: Vec<ChangeEvent>,
}

/// What happened to a delivery-ledger advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerAdvance {
    /// The ledger now holds the new version.
    Advanced,
    /// The ledger already held this version or a newer one; nothing was changed.
    AlreadyAt {
        /// The version the ledger holds.
        current: u64,
    },
}

/// "Fetch this employee from BambooHR": left by an event-based webhook (which carries
/// ids only) for the poller's targeted mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    /// Which employee.
    pub employee_id: EmployeeId,
    /// When the latest request for this employee was recorded. Clearing is conditional
    /// on it, so a request recorded while the poller was fetching survives the clear.
    pub requested_at: OffsetDateTime,
}

/// What [`Store::purge_directory`] removed, by kind of item. The audit trail is not
/// among them: it outlives the purge (see the method).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    /// Whether the directory record itself was there.
    pub directory: bool,
    /// Users.
    pub users: u64,
    /// Groups.
    pub groups: u64,
    /// Sync run records.
    pub runs: u64,
    /// Unpublished outbox events.
    pub outbox: u64,
    /// Delivery log records.
    pub deliveries: u64,
    /// Delivery ledger entries.
    pub ledger: u64,
    /// Remembered target account ids.
    pub accounts: u64,
    /// Circuit breakers.
    pub breakers: u64,
    /// Full-sync checkpoints.
    pub checkpoints: u64,
    /// Sync leases.
    pub leases: u64,
    /// Webhook refresh requests.
    pub refresh_requests: u64,
    /// Webhook delivery receipts.
    pub receipts: u64,
    /// Evidence rows left in the main table by a stack from before the put-only
    /// evidence table (evidence there outlives the purge, like the audit trail).
    pub evidence: u64,
    /// Setup links.
    pub setup_links: u64,
    /// Items of the directory of no kind above (none today; an adapter that finds one
    /// removes it too, so a purge leaves nothing but the audit trail).
    pub other: u64,
}

impl PurgeReport {
    /// Items removed, the directory record included.
    pub fn total(&self) -> u64 {
        u64::from(self.directory)
            + self.users
            + self.groups
            + self.runs
            + self.outbox
            + self.deliveries
            + self.ledger
            + self.accounts
            + self.breakers
            + self.checkpoints
            + self.leases
            + self.refresh_requests
            + self.receipts
            + self.evidence
            + self.setup_links
            + self.other
    }
}

/// Persistent state of every directory. The poller's items (groups, runs, leases,
/// checkpoints) are in [`SyncStore`], the dispatcher's (delivery log, target account
/// ids, circuit breakers) in [`DeliveryStore`].
#[async_trait]
pub trait Store:
    SyncStore
    + DeliveryStore
    + crate::audit_store::AuditStore
    + crate::setup_link_store::SetupLinkStore
    + Send
    + Sync
{
    /// Reads a directory.
    async fn get_directory(&self, id: &DirectoryId) -> Result<Option<Directory>, StoreError>;

    /// Writes a directory whose `version` is `expected_version + 1` (or 1 when None);
    /// fails with `Conflict` when the stored version differs.
    async fn put_directory(
        &self,
        directory: &Directory,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;

    /// Every directory, in id order.
    async fn list_directories(&self) -> Result<Vec<Directory>, StoreError>;

    /// Reads one user.
    async fn get_user(
        &self,
        directory: &DirectoryId,
        employee: &EmployeeId,
    ) -> Result<Option<DirectoryUser>, StoreError>;

    /// Every user of a directory, in employee id order.
    async fn list_users(&self, directory: &DirectoryId) -> Result<Vec<DirectoryUser>, StoreError>;

    /// The compact fingerprint projection of every user of a directory.
    async fn user_fingerprints(
        &self,
        directory: &DirectoryId,
    ) -> Result<Vec<UserFingerprint>, StoreError>;

    /// Writes a user and its outbox events atomically, conditional on the version.
    async fn write_user(&self, write: &UserWrite) -> Result<(), StoreError>;

    /// Outbox events not yet published, oldest first.
    async fn pending_events(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError>;

    /// Removes published events from the outbox; unknown ids are ignored.
    async fn mark_published(
        &self,
        directory: &DirectoryId,
        ids: &[EventId],
    ) -> Result<(), StoreError>;

    /// The last version delivered to a target for an object.
    async fn ledger_get(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
    ) -> Result<Option<u64>, StoreError>;

    /// Raises the ledger to `version` only if it is higher than what is stored.
    async fn ledger_advance(
        &self,
        directory: &DirectoryId,
        target: &TargetId,
        object_id: &str,
        version: u64,
    ) -> Result<LedgerAdvance, StoreError>;

    /// Records (or renews) a refresh request for each employee. Recording the same
    /// employee twice keeps one request, stamped `at`.
    async fn record_refresh_requests(
        &self,
        directory: &DirectoryId,
        employees: &[EmployeeId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Pending refresh requests of a directory, in employee id order, at most `limit`.
    async fn pending_refresh_requests(
        &self,
        directory: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<RefreshRequest>, StoreError>;

    /// Removes the given requests, each only if it was not renewed since it was read
    /// (its stored `requested_at` is still the one given); unknown ones are ignored.
    async fn clear_refresh_requests(
        &self,
        directory: &DirectoryId,
        requests: &[RefreshRequest],
    ) -> Result<(), StoreError>;

    /// Whether a delivery receipt `key` exists and has not expired at `now`.
    async fn has_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records a delivery receipt that expires at `expires_at`, with a conditional put:
    /// true when this is the first (unexpired) receipt for `key`, false when one exists.
    async fn record_receipt(
        &self,
        directory: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Removes everything stored for a directory (its record, users, groups, runs,
    /// outbox, delivery log, ledger, target accounts, breakers, checkpoint, lease,
    /// refresh requests, receipts and setup links) and says what, by count. Only for a
    /// revoked directory past its retention window. The audit trail and the evidence
    /// rows are kept: both are put-only and no function may delete them, so they
    /// outlive the purge.
    /// Purging a directory with nothing stored reports zeros. Not atomic: a purge
    /// interrupted midway is finished by the next one.
    async fn purge_directory(&self, directory: &DirectoryId) -> Result<PurgeReport, StoreError>;
}
