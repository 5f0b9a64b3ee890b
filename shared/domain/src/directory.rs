//! A connected BambooHR company: how to reach it, how to sync it, where changes go.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::DomainError;
use crate::ids::{DirectoryId, TargetId};
use crate::target::Target;

/// How the sync authenticates to BambooHR. The credential itself lives in the secret store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// API key over HTTP Basic.
    ApiKey,
    /// OAuth 2.0 bearer tokens with refresh.
    OAuth,
}

/// Whether the directory is being synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryState {
    /// Synced on schedule and by webhooks.
    Active,
    /// Paused by an operator: webhooks get 503 (BambooHR retries), schedules skip.
    Paused,
    /// A run tripped the safeguard and waits for an operator.
    Held,
    /// Disconnected; history kept for the retention window.
    Revoked,
}

/// When the poller runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Minutes between incremental runs.
    pub incremental_every_minutes: u32,
    /// Hours between full reconciliations.
    pub full_every_hours: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            incremental_every_minutes: 30,
            full_every_hours: 24,
        }
    }
}

/// The mass-change safeguard (Okta's Import Safeguard).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Safeguard {
    /// Largest share of users one run may deactivate or delete (0.0 - 1.0).
    pub max_share: f64,
    /// Below this many deactivations/deletions the share is not checked.
    pub min_count: u32,
    /// Minutes over which webhook deactivations and deletions are counted together: a
    /// webhook carries one or a few employees, so its changes are held once those of
    /// the last `window_minutes` would, added up, trip the safeguard as one run's.
    #[serde(default = "default_window_minutes")]
    pub window_minutes: u32,
}

/// The default webhook counting window: an hour.
pub const DEFAULT_SAFEGUARD_WINDOW_MINUTES: u32 = 60;

/// The longest webhook counting window: a day (the buckets stay few and small).
pub const MAX_SAFEGUARD_WINDOW_MINUTES: u32 = 24 * 60;

fn default_window_minutes() -> u32 {
    DEFAULT_SAFEGUARD_WINDOW_MINUTES
}

impl Default for Safeguard {
    fn default() -> Self {
        Self {
            max_share: 0.20,
            min_count: 5,
            window_minutes: DEFAULT_SAFEGUARD_WINDOW_MINUTES,
        }
    }
}

/// Webhook deactivations and deletions applied in one minute, for the safeguard's
/// rolling window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemovalBucket {
    /// The minute (its start).
    #[serde(with = "time::serde::rfc3339")]
    pub minute: OffsetDateTime,
    /// Users deactivated or deleted by webhooks in it.
    pub count: u64,
}

/// What happens to users missing from a complete full listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MissingUserPolicy {
    /// Mark them deleted.
    #[default]
    Delete,
    /// Mark them inactive.
    Deactivate,
}

/// A field groups are derived from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSource {
    /// `department`, `division`, `location`, or a custom attribute name.
    pub field: String,
}

/// Where the incremental and full syncs got to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryCursors {
    /// The `since` for the next `employees/changed` call.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub changed_since: Option<OffsetDateTime>,
    /// When the last complete full reconciliation finished.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_full_sync: Option<OffsetDateTime>,
    /// A full reconciliation is wanted at the next run (settings changed, or asked for).
    #[serde(default)]
    pub full_requested: bool,
    /// The directory-local day whose date-driven transitions were last applied.
    #[serde(default)]
    pub lifecycle_checked_on: Option<time::Date>,
    /// When each SCIM target (by id) was last reconciled (its accounts read back).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets_reconciled_at: BTreeMap<String, i64>,
    /// SCIM targets (by id) whose reconciliation was asked for (on demand, or after a
    /// settings change) and has not run yet.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub reconcile_requested: std::collections::BTreeSet<String>,
}

/// What the safeguard held, for the operator who releases or discards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    /// The run that was held; for webhook deactivations held by the safeguard's
    /// window, an id of the same form naming that hold (no run record carries it).
    pub run_id: crate::run::RunId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Users the run would have deactivated.
    pub would_deactivate: u64,
    /// Users the run would have deleted.
    pub would_delete: u64,
    /// Active (and pending) users before the run.
    pub active_before: u64,
    /// Some of the employee ids concerned (at most 50), for the operator to check.
    pub sample: Vec<String>,
}

/// The event-based webhook the sync registered at BambooHR for a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredWebhook {
    /// BambooHR's webhook id.
    pub id: String,
    /// Where BambooHR posts.
    pub url: String,
    /// The fields whose change fires `employee.updated`, as registered.
    pub monitor_fields: Vec<String>,
}

/// A connected BambooHR company and its sync settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// Operator-chosen id.
    pub id: DirectoryId,
    /// BambooHR company subdomain.
    pub subdomain: String,
    /// Overrides `https://{subdomain}.bamboohr.com` (tests, proxies, other regions).
    #[serde(default)]
    pub base_url: Option<String>,
    /// API key or OAuth.
    pub auth: AuthKind,
    /// Active, paused, held or revoked.
    pub state: DirectoryState,
    /// When the poller runs.
    #[serde(default)]
    pub schedule: Schedule,
    /// Extra BambooHR fields to fetch beyond the standard set.
    #[serde(default)]
    pub extra_fields: Vec<String>,
    /// BambooHR field (any vocabulary) -> custom attribute name.
    #[serde(default)]
    pub custom_field_map: BTreeMap<String, String>,
    /// Webhook field aliases the BambooHR admin chose -> a field key of any vocabulary.
    #[serde(default)]
    pub field_aliases: BTreeMap<String, String>,
    /// The BambooHR fields kept in users' raw attributes beyond the ones the mapping
    /// uses (which are always kept, as are the custom-field map's keys). None keeps the
    /// directory's extra fields and group sources; anything else BambooHR sends (a pay
    /// rate or SSN an admin added to a webhook) is dropped before it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_attribute_allowlist: Option<Vec<String>>,
    /// Opt-in to URL-token webhook authentication (BambooHR allows it for global
    /// webhooks but advises against it); signatures are required otherwise.
    #[serde(default)]
    pub webhook_url_token_allowed: bool,
    /// Fields groups are derived from.
    #[serde(default)]
    pub group_sources: Vec<GroupSource>,
    /// Where changes go.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// Mass-change protection.
    #[serde(default)]
    pub safeguard: Safeguard,
    /// What happens to users missing from a complete listing.
    #[serde(default)]
    pub missing_users: MissingUserPolicy,
    /// Days before the hire date a pending user becomes active.
    #[serde(default = "default_pre_start_days")]
    pub pre_start_days: u32,
    /// IANA time zone name that date transitions follow.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Sync progress.
    #[serde(default)]
    pub cursors: DirectoryCursors,
    /// Last successful run.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub last_success: Option<OffsetDateTime>,
    /// Minutes after which the directory counts as stale (default: twice the schedule).
    #[serde(default)]
    pub stale_after_minutes: Option<u32>,
    /// How far back (days) the evidence's onboarding completion rate counts hires.
    #[serde(default = "default_onboarding_window_days")]
    pub onboarding_window_days: u32,
    /// When the directory was connected (a directory that never synced goes stale
    /// counting from here).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub connected_at: Option<OffsetDateTime>,
    /// Since when the directory is stale (`directory.stale` was published for this
    /// stale period); cleared by the next successful sync.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub stale_since: Option<OffsetDateTime>,
    /// What the safeguard held while the directory is `held`.
    #[serde(default)]
    pub hold: Option<Hold>,
    /// An operator released a hold: the next full run applies its deactivations and
    /// deletions without the safeguard, once.
    #[serde(default)]
    pub safeguard_released: bool,
    /// Webhook deactivations and deletions applied in the safeguard's window, per
    /// minute (see [`Directory::webhook_removals_in_window`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_removals: Vec<RemovalBucket>,
    /// When the directory was revoked: its history (users, runs, deliveries, evidence)
    /// is kept until this plus the stack's retention window, then purged. Defaulted so
    /// records written before revocation kept a date still read.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    /// The event-based webhook registered at BambooHR for this directory, whose
    /// monitored fields follow the settings and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<RegisteredWebhook>,
    /// The Secrets Manager secret (or local secret name) holding this directory's credentials.
    pub secret_name: String,
    /// Optimistic-concurrency version of this record.
    #[serde(default)]
    pub version: u64,
}

fn default_pre_start_days() -> u32 {
    7
}

/// The default window of the onboarding completion rate, in days.
pub const DEFAULT_ONBOARDING_WINDOW_DAYS: u32 = 30;

fn default_onboarding_window_days() -> u32 {
    DEFAULT_ONBOARDING_WINDOW_DAYS
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

impl Directory {
    /// A new active directory with default settings.
    pub fn new(id: DirectoryId, subdomain: &str, secret_name: &str) -> Result<Self, DomainError> {
        let valid = !subdomain.is_empty()
            && subdomain.len() <= 63
            && subdomain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !valid {
            return Err(DomainError::invalid(
                "subdomain",
                "use the letters, digits and dashes before .bamboohr.com",
            ));
        }
        Ok(Self {
            id,
            subdomain: subdomain.to_string(),
            base_url: None,
            auth: AuthKind::ApiKey,
            state: DirectoryState::Active,
            schedule: Schedule::default(),
            extra_fields: Vec::new(),
            custom_field_map: BTreeMap::new(),
            field_aliases: BTreeMap::new(),
            raw_attribute_allowlist: None,
            webhook_url_token_allowed: false,
            group_sources: Vec::new(),
            targets: Vec::new(),
            safeguard: Safeguard::default(),
            missing_users: MissingUserPolicy::default(),
            pre_start_days: default_pre_start_days(),
            time_zone: default_time_zone(),
            cursors: DirectoryCursors::default(),
            last_success: None,
            stale_after_minutes: None,
            onboarding_window_days: DEFAULT_ONBOARDING_WINDOW_DAYS,
            connected_at: None,
            stale_since: None,
            hold: None,
            safeguard_released: false,
            webhook_removals: Vec::new(),
            deleted_at: None,
            webhook: None,
            secret_name: secret_name.to_string(),
            version: 0,
        })
    }

    /// The BambooHR base URL: the override, else the company's bamboohr.com host.
    pub fn bamboohr_base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("https://{}.bamboohr.com", self.subdomain))
    }

    /// Minutes without a successful sync after which the directory is stale.
    pub fn stale_threshold_minutes(&self) -> u32 {
        self.stale_after_minutes.unwrap_or_else(|| {
            self.schedule
                .incremental_every_minutes
                .max(1)
                .saturating_mul(2)
        })
    }

    /// Whether the directory is stale at `now`: connected for longer than the threshold
    /// and not synced successfully within it. A paused or revoked directory is not
    /// expected to sync, so it is never stale.
    pub fn is_stale(&self, now: OffsetDateTime) -> bool {
        if matches!(self.state, DirectoryState::Paused | DirectoryState::Revoked) {
            return false;
        }
        let threshold = time::Duration::minutes(i64::from(self.stale_threshold_minutes()));
        match self.last_success.or(self.connected_at) {
            Some(t) => now - t > threshold,
            None => false,
        }
    }

    /// Looks a target up by id.
    pub fn target(&self, id: &TargetId) -> Option<&Target> {
        self.targets.iter().find(|t| &t.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{TargetFilter, TargetKind};

    #[test]
    fn subdomains_with_dots_or_slashes_are_refused() {
        let id = DirectoryId::parse("acme").unwrap();
        assert!(Directory::new(id.clone(), "acme.evil.com", "s").is_err());
        assert!(Directory::new(id.clone(), "", "s").is_err());
        let d = Directory::new(id, "acme", "s").unwrap();
        assert_eq!(d.bamboohr_base_url(), "https://acme.bamboohr.com");
    }

    #[test]
    fn targets_round_trip_with_a_kind_tag() {
        let t = Target {
            id: TargetId::parse("app").unwrap(),
            kind: TargetKind::app_webhook("http://127.0.0.1:9/hook".into()),
            filter: TargetFilter::default(),
            enabled: true,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["kind"], "app_webhook");
        assert_eq!(serde_json::from_value::<Target>(v).unwrap(), t);
    }

    #[test]
    fn a_record_written_before_revocation_dates_existed_reads_with_no_deleted_at() {
        let mut v = serde_json::to_value(
            Directory::new(DirectoryId::parse("acme").unwrap(), "acme", "s").unwrap(),
        )
        .unwrap();
        assert!(
            v.get("deletedAt").is_none(),
            "an unrevoked directory omits it"
        );
        v.as_object_mut().unwrap().remove("deletedAt");
        let d: Directory = serde_json::from_value(v).unwrap();
        assert_eq!(d.deleted_at, None);

        let mut revoked = d.clone();
        revoked.deleted_at = Some(OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap());
        let v = serde_json::to_value(&revoked).unwrap();
        assert_eq!(v["deletedAt"], "2027-01-15T08:00:00Z");
        assert_eq!(serde_json::from_value::<Directory>(v).unwrap(), revoked);
    }
}
