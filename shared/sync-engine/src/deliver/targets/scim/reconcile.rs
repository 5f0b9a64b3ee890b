//! Target reconciliation for a SCIM target: the target's accounts are read (paged
//! `GET /Users?startIndex&count`, at a bounded rate) and compared with what this
//! target should hold for every user of the directory, and drift is repaired:
//!
//! - an admitted user without an account gets one: recreated when the account we
//!   created was deleted at the target, created when the user is newly admitted;
//! - an account suspended at the target (`active: false` while the user is active) is
//!   reactivated;
//! - an account whose owned attributes differ from our rendering (changed by hand, or
//!   by a settings change such as the name source or the owned attributes) is updated,
//!   writing only those attributes;
//! - a user the target no longer admits (filters changed) or who left follows the
//!   target's leave policy (deactivate, or delete);
//! - an account that already holds what we render gets no request at all, and
//!   accounts that are no employee's are left alone.
//!
//! Repairs of admitted users go through the ordinary delivery path (ledger, delivery
//! log, retry path, breaker), forced as a re-push is. Writes carry `If-Match` with the
//! account's version from the listing when the target versions its resources.
//!
//! The daily schedule and the run after a settings change call
//! [`reconcile_target`]; it can be run on demand the same way.

use std::collections::HashMap;
use std::time::Duration;

use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, EmployeeId, EventType, ScimMatchKey,
    Target, TargetId, TargetKind, UserState,
};
use mapping::to_scim_user_with_manager;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;
use tracing::info;

use super::{
    changes, foreign_owner, resource_id, status_error, MatchedBy, ScimSettings, ScimTarget,
};
use crate::deliver::attempt::TargetOutcome;
use crate::deliver::dispatch::deliver_and_record;
use crate::deps::Engine;
use crate::error::EngineError;

/// How fast and in what pages the target is read and repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// Accounts per listing page (`count`).
    pub page_size: u32,
    /// The least time between two requests the reconciliation starts (listing pages
    /// and repairs), which bounds its rate at the target.
    pub min_interval: Duration,
    /// At most this many listing pages (a provider whose `totalResults` never ends
    /// cannot keep the run going).
    pub max_pages: u32,
}

impl Default for ReconcileOptions {
    /// 100 accounts a page, at most 5 requests a second, at most 2,000 pages.
    fn default() -> Self {
        Self {
            page_size: 100,
            min_interval: Duration::from_millis(200),
            max_pages: 2_000,
        }
    }
}

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reading the directory, its users or its secrets failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The target is not a SCIM target.
    #[error("target {0} is not a SCIM target")]
    NotScim(TargetId),
    /// The target is disabled.
    #[error("target {0} is disabled")]
    Disabled(TargetId),
    /// The target's accounts could not be read (nothing was repaired).
    #[error("reading the target's accounts failed: {reason}")]
    Listing {
        /// What failed (operation and status, never a body).
        reason: String,
        /// Whether a later run may succeed.
        retryable: bool,
    },
}

impl From<ports::StoreError> for ReconcileError {
    fn from(e: ports::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl From<ports::SecretsError> for ReconcileError {
    fn from(e: ports::SecretsError) -> Self {
        Self::Engine(e.into())
    }
}

/// What was done for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RepairAction {
    /// A newly admitted user's account was created.
    Create,
    /// The account we created was gone from the target and was created again.
    Recreate,
    /// The account was suspended at the target and was reactivated.
    Reactivate,
    /// Owned attributes differed and were written.
    Update,
    /// The user left or is no longer admitted: the leave policy was applied.
    Deprovision,
}

/// One user the reconciliation acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repair {
    /// The BambooHR employee id.
    pub employee_id: String,
    /// What was done.
    pub action: RepairAction,
    /// Why, in a line (attribute names, never values).
    pub reason: String,
    /// How the write went.
    pub outcome: TargetOutcome,
}

/// What a reconciliation found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Listing pages read.
    pub pages_read: usize,
    /// Accounts the target listed.
    pub accounts_read: usize,
    /// Accounts that are no employee's of this directory (left alone).
    pub unmanaged_accounts: usize,
    /// Users of the directory looked at.
    pub users_checked: usize,
    /// Users whose account already held what we render, or who need none: no request.
    pub unchanged: usize,
    /// Accounts created for newly admitted users.
    pub created: usize,
    /// Accounts created again after being deleted at the target.
    pub recreated: usize,
    /// Accounts reactivated after being suspended at the target.
    pub reactivated: usize,
    /// Accounts whose owned attributes were updated.
    pub updated: usize,
    /// Accounts deactivated or deleted by the leave policy.
    pub deprovisioned: usize,
    /// Users that cannot have an account (e.g. no work email), with no request.
    pub skipped: usize,
    /// Repairs that did not succeed (they take the retry path where retryable).
    pub failed: usize,
    /// One entry per user acted on (or failing), in employee id order.
    pub repairs: Vec<Repair>,
}

impl ReconcileReport {
    /// Writes attempted: every repair.
    pub fn repairs_attempted(&self) -> usize {
        self.repairs.len()
    }
}

/// Reconciles one SCIM target of a directory with the default pace.
pub async fn reconcile_target(
    engine: &Engine,
    directory_id: &DirectoryId,
    target_id: &TargetId,
) -> Result<ReconcileReport, ReconcileError> {
    reconcile_target_with(engine, directory_id, target_id, ReconcileOptions::default()).await
}

/// Reconciles one SCIM target of a directory (see the module documentation).
pub async fn reconcile_target_with(
    engine: &Engine,
    directory_id: &DirectoryId,
    target_id: &TargetId,
    opts: ReconcileOptions,
) -> Result<ReconcileReport, ReconcileError> {
    let directory = engine
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(directory_id.clone()))?;
    let target = directory
        .targets
        .iter()
        .find(|t| &t.id == target_id)
        .ok_or_else(|| EngineError::TargetNotFound(target_id.clone()))?;
    if !target.enabled {
        return Err(ReconcileError::Disabled(target_id.clone()));
    }
    let TargetKind::Scim { base_url, scim } = &target.kind else {
        return Err(ReconcileError::NotScim(target_id.clone()));
    };
    // Only the target credentials (the poller runs reconciliations and may read no
    // webhook key).
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Targets])
        .await?;
    let scim_target = ScimTarget {
        id: &target.id,
        base_url,
        token: secrets
            .targets
            .get(target.id.as_str())
            .and_then(|t| t.bearer_token.as_ref()),
        settings: ScimSettings::from_config(scim),
    };
    let mut pace = Pace::new(opts.min_interval);
    let mut report = ReconcileReport::default();
    let accounts = list_accounts(engine, &scim_target, opts, &mut pace, &mut report).await?;
    let index = Index::new(&accounts);
    let users = engine.store.list_users(directory_id).await?;
    let mut managers: HashMap<EmployeeId, Option<String>> = HashMap::new();
    let mut matched: Vec<&str> = Vec::new();
    let run = Run {
        engine,
        directory: &directory,
        target,
        scim_target: &scim_target,
        secrets: &secrets,
    };
    for user in &users {
        report.users_checked += 1;
        let plan = run.plan(user, &index, &mut managers).await?;
        if let Some(id) = plan.account_id {
            matched.push(id);
        }
        let Some((action, reason, leave)) = plan.action else {
            if plan.skipped {
                report.skipped += 1;
            } else {
                report.unchanged += 1;
            }
            continue;
        };
        pace.wait().await;
        let outcome = run.repair(user, leave).await?;
        let ok = matches!(outcome, TargetOutcome::Delivered { .. });
        if ok {
            *match action {
                RepairAction::Create => &mut report.created,
                RepairAction::Recreate => &mut report.recreated,
                RepairAction::Reactivate => &mut report.reactivated,
                RepairAction::Update => &mut report.updated,
                RepairAction::Deprovision => &mut report.deprovisioned,
            } += 1;
        } else if matches!(outcome, TargetOutcome::Skipped { .. }) {
            report.skipped += 1;
        } else {
            report.failed += 1;
        }
        report.repairs.push(Repair {
            employee_id: user.employee_id.as_str().to_string(),
            action,
            reason,
            outcome,
        });
    }
    matched.sort_unstable();
    matched.dedup();
    report.unmanaged_accounts = report.accounts_read.saturating_sub(matched.len());
    info!(
        directory_id = %directory_id, target_id = %target_id, accounts = report.accounts_read,
        users = report.users_checked, unchanged = report.unchanged, created = report.created,
        recreated = report.recreated, reactivated = report.reactivated, updated = report.updated,
        deprovisioned = report.deprovisioned, failed = report.failed,
        "SCIM target reconciled"
    );
    Ok(report)
}

/// Spaces requests at least `min_interval` apart.
struct Pace {
    min_interval: Duration,
    last: Option<tokio::time::Instant>,
}

impl Pace {
    fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            last: None,
        }
    }

    async fn wait(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.min_interval).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

/// Every account of the target, page by page.
async fn list_accounts(
    engine: &Engine,
    target: &ScimTarget<'_>,
    opts: ReconcileOptions,
    pace: &mut Pace,
    report: &mut ReconcileReport,
) -> Result<Vec<Value>, ReconcileError> {
    let listing = |e: super::StepError| ReconcileError::Listing {
        reason: e.reason,
        retryable: e.retryable,
    };
    let client = target
        .client(&engine.http, engine.clock.as_ref(), "Users", false)
        .map_err(listing)?;
    let page_size = opts.page_size.max(1);
    let mut accounts = Vec::new();
    let mut start: u64 = 1;
    for _ in 0..opts.max_pages {
        pace.wait().await;
        let mut url = client.base.clone();
        url.query_pairs_mut()
            .append_pair("startIndex", &start.to_string())
            .append_pair("count", &page_size.to_string());
        let answer = client
            .send(Method::GET, url, None, None)
            .await
            .map_err(|e| listing(e.during("GET /Users?startIndex&count")))?;
        if !answer.status.is_success() {
            return Err(listing(status_error(
                "GET /Users?startIndex&count",
                &answer,
            )));
        }
        let body = answer.body.unwrap_or_default();
        let page: Vec<Value> = body
            .get("Resources")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        report.pages_read += 1;
        let got = page.len() as u64;
        accounts.extend(page);
        let total = body.get("totalResults").and_then(Value::as_u64);
        start += got;
        if got == 0 || total.is_some_and(|t| start > t) {
            break;
        }
    }
    report.accounts_read = accounts.len();
    Ok(accounts)
}

/// The listed accounts by id, externalId, email and userName (the last two ignoring
/// case).
struct Index<'a> {
    by_id: HashMap<&'a str, &'a Value>,
    by_external_id: HashMap<&'a str, Vec<&'a Value>>,
    by_email: HashMap<String, Vec<&'a Value>>,
    by_user_name: HashMap<String, Vec<&'a Value>>,
}

/// What a lookup in the listing found.
enum Found<'a> {
    None,
    One(&'a Value, MatchedBy),
    /// Several accounts carry the value: the delivery path refuses to guess.
    Several,
}

impl<'a> Index<'a> {
    fn new(accounts: &'a [Value]) -> Self {
        let mut index = Index {
            by_id: HashMap::new(),
            by_external_id: HashMap::new(),
            by_email: HashMap::new(),
            by_user_name: HashMap::new(),
        };
        for a in accounts {
            if let Some(id) = resource_id(a) {
                index.by_id.insert(id, a);
            }
            if let Some(ext) = a.get("externalId").and_then(Value::as_str) {
                index.by_external_id.entry(ext).or_default().push(a);
            }
            if let Some(name) = a.get("userName").and_then(Value::as_str) {
                index
                    .by_user_name
                    .entry(name.to_lowercase())
                    .or_default()
                    .push(a);
            }
            let emails = a.get("emails").and_then(Value::as_array);
            for e in emails.into_iter().flatten() {
                if let Some(v) = e.get("value").and_then(Value::as_str) {
                    index.by_email.entry(v.to_lowercase()).or_default().push(a);
                }
            }
        }
        index
    }

    /// The user's account by the match order, as the delivery path would find it.
    fn find(
        &self,
        order: &[ScimMatchKey],
        stored: Option<&str>,
        employee_id: &str,
        work_email: Option<&str>,
        user_name: Option<&str>,
    ) -> Found<'a> {
        let one = |list: Option<&Vec<&'a Value>>, by: MatchedBy| match list.map(Vec::as_slice) {
            None | Some([]) => Found::None,
            Some([a]) => Found::One(a, by),
            Some(_) => Found::Several,
        };
        for key in order {
            let found = match key {
                ScimMatchKey::StoredId => match stored.and_then(|id| self.by_id.get(id)) {
                    Some(a) => Found::One(a, MatchedBy::StoredId),
                    None => Found::None,
                },
                ScimMatchKey::ExternalId => {
                    one(self.by_external_id.get(employee_id), MatchedBy::ExternalId)
                }
                ScimMatchKey::WorkEmail => match work_email {
                    Some(e) => one(self.by_email.get(&e.to_lowercase()), MatchedBy::WorkEmail),
                    None => Found::None,
                },
                ScimMatchKey::UserName => match user_name {
                    Some(n) => one(
                        self.by_user_name.get(&n.to_lowercase()),
                        MatchedBy::UserName,
                    ),
                    None => Found::None,
                },
            };
            if !matches!(found, Found::None) {
                return found;
            }
        }
        Found::None
    }
}

/// What to do for one user: nothing (`action` None), or an action with its reason and
/// whether it is the leave policy.
struct Plan<'a> {
    account_id: Option<&'a str>,
    action: Option<(RepairAction, String, bool)>,
    skipped: bool,
}

impl<'a> Plan<'a> {
    fn nothing(account_id: Option<&'a str>) -> Self {
        Self {
            account_id,
            action: None,
            skipped: false,
        }
    }

    fn act(account_id: Option<&'a str>, action: RepairAction, reason: String, leave: bool) -> Self {
        Self {
            account_id,
            action: Some((action, reason, leave)),
            skipped: false,
        }
    }
}

/// One reconciliation's fixed context.
struct Run<'r> {
    engine: &'r Engine,
    directory: &'r Directory,
    target: &'r Target,
    scim_target: &'r ScimTarget<'r>,
    secrets: &'r ports::DirectorySecrets,
}

impl Run<'_> {
    /// Compares the user's account (from the listing) with what the target should hold.
    async fn plan<'a>(
        &self,
        user: &DirectoryUser,
        index: &Index<'a>,
        managers: &mut HashMap<EmployeeId, Option<String>>,
    ) -> Result<Plan<'a>, ReconcileError> {
        let store = self.engine.store.as_ref();
        let dir = &self.directory.id;
        let settings = &self.scim_target.settings;
        let stored = store
            .get_target_account(dir, &self.target.id, user.id.as_str())
            .await?;
        let manager = match &user.manager_employee_id {
            Some(m) => match managers.get(m) {
                Some(id) => id.clone(),
                None => {
                    let id = self.scim_target.manager_account(store, dir, m).await?;
                    managers.insert(m.clone(), id.clone());
                    id
                }
            },
            None => None,
        };
        let rendered = to_scim_user_with_manager(user, &settings.user, manager.as_deref());
        let user_name = rendered
            .as_ref()
            .ok()
            .and_then(|r| r["userName"].as_str().map(str::to_string));
        let found = index.find(
            &settings.match_order,
            stored.as_deref(),
            user.employee_id.as_str(),
            user.work_email(),
            user_name.as_deref(),
        );
        let (account, matched_by) = match found {
            Found::None => (None, None),
            Found::One(a, by) => (Some(a), Some(by)),
            Found::Several => {
                let reason = "several accounts match this employee".to_string();
                return Ok(Plan::act(None, RepairAction::Update, reason, false));
            }
        };
        let account_id = account.and_then(resource_id);
        let foreign = account.and_then(|a| foreign_owner(a, user.employee_id.as_str()));
        let admitted = self.target.admits(user);
        let leaving = matches!(user.state, UserState::Inactive | UserState::Deleted);

        if admitted.is_err() || leaving {
            // The leave policy, for an account that is this employee's and still there.
            let Some(a) = account.filter(|_| foreign.is_none()) else {
                return Ok(Plan::nothing(account_id));
            };
            let why = match &admitted {
                Err(reason) => format!("no longer admitted ({reason})"),
                Ok(()) => format!("the user is {}", user.state.as_str()),
            };
            let active = a.get("active").and_then(Value::as_bool) != Some(false);
            return Ok(match settings.deprovision {
                super::Deprovision::Delete => Plan::act(
                    account_id,
                    RepairAction::Deprovision,
                    format!("{why}; the account is still at the target"),
                    true,
                ),
                super::Deprovision::Deactivate if active => Plan::act(
                    account_id,
                    RepairAction::Deprovision,
                    format!("{why}; the account is active at the target"),
                    true,
                ),
                super::Deprovision::Deactivate => Plan::nothing(account_id),
            });
        }

        let desired = match rendered {
            Ok(d) => d,
            // No work email (or no username source): the user cannot have an account.
            Err(_) => {
                return Ok(Plan {
                    account_id,
                    action: None,
                    skipped: true,
                })
            }
        };
        let Some(a) = account else {
            return Ok(if stored.is_some() {
                Plan::act(
                    None,
                    RepairAction::Recreate,
                    "the account was deleted at the target".into(),
                    false,
                )
            } else {
                Plan::act(
                    None,
                    RepairAction::Create,
                    "no account at the target".into(),
                    false,
                )
            });
        };
        if let (Some(other), Some(by)) = (foreign, matched_by) {
            // Adopt or refuse: the delivery path decides, and audits an adoption.
            let reason = format!(
                "the account found by {} is held by employee {other}",
                by.as_str()
            );
            return Ok(Plan::act(account_id, RepairAction::Update, reason, false));
        }
        let diff = changes(a, &desired, &settings.owned);
        if diff.is_empty() {
            return Ok(Plan::nothing(account_id));
        }
        let suspended = a.get("active").and_then(Value::as_bool) == Some(false)
            && desired.get("active").and_then(Value::as_bool) == Some(true);
        Ok(if suspended {
            Plan::act(
                account_id,
                RepairAction::Reactivate,
                "the account was suspended at the target".into(),
                false,
            )
        } else {
            let names = diff.attribute_names().join(", ");
            Plan::act(
                account_id,
                RepairAction::Update,
                format!("owned attributes differ: {names}"),
                false,
            )
        })
    }

    /// Writes one repair: through the delivery path (forced, as a re-push), or for the
    /// leave policy of a user the filter no longer admits, straight to the account.
    async fn repair(
        &self,
        user: &DirectoryUser,
        leave: bool,
    ) -> Result<TargetOutcome, ReconcileError> {
        let now = self.engine.clock.now();
        if leave && self.target.admits(user).is_err() {
            // The filter refuses the user, so the delivery path would skip it; the
            // account is switched off (or deleted) as a leaver's would be.
            let mut leaver = user.clone();
            if leaver.state != UserState::Deleted {
                leaver.state = UserState::Inactive;
            }
            let (attempt, _) = self
                .scim_target
                .deliver_user_recorded(
                    self.engine,
                    &self.directory.id,
                    user.id.as_str(),
                    &leaver,
                    user.version,
                )
                .await;
            return Ok(attempt.outcome);
        }
        let event_type = if user.state == UserState::Deleted {
            EventType::UserDeleted
        } else {
            EventType::UserUpdated
        };
        let event = ChangeEvent::for_user(event_type, user, now);
        Ok(deliver_and_record(
            self.engine,
            self.directory,
            self.target,
            &event,
            Some(user),
            self.secrets,
            None,
            true,
        )
        .await?)
    }
}
