//! How a SCIM delivery finds the employee's account and decides whether it may use
//! it: the match order (stored id, externalId, work email, userName by default), and
//! adoption of an account another employee's record holds, allowed only when that
//! employee is inactive or deleted here (a rehire entered as a new BambooHR record)
//! and the target allows it; every adoption forgets the old record's stored id and is
//! written to the audit log. Also the manager's account id, read from the stored ids.

use domain::{DirectoryId, DirectoryUser, EmployeeId, ScimMatchKey, UserId, UserState};
use serde_json::Value;
use tracing::info;

use super::*;

/// What the engine knows beyond the user: its manager's account at this target, and
/// the store, to judge whether another employee's account may be adopted. Empty for a
/// stateless delivery (no manager, no adoption).
#[derive(Default)]
pub(crate) struct Known<'a> {
    /// The account id remembered from an earlier delivery.
    pub(crate) account: Option<String>,
    /// The manager's account id at this target, when it has one.
    pub(crate) manager: Option<String>,
    /// Where other employees are looked up.
    pub(crate) store: Option<(&'a dyn ports::Store, &'a DirectoryId)>,
}

/// How an existing account was found; all are updated the same way, but the
/// distinction is logged because a work email or userName match may adopt an account
/// we did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchedBy {
    /// The resource id remembered from an earlier delivery.
    StoredId,
    ExternalId,
    WorkEmail,
    UserName,
    /// A 409 on create, then a userName lookup.
    Conflict,
}

impl MatchedBy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::StoredId => "stored resource id",
            Self::ExternalId => "externalId",
            Self::WorkEmail => "work email",
            Self::UserName => "userName",
            Self::Conflict => "userName after a 409",
        }
    }
}

impl ScimTarget<'_> {
    /// The manager's account id at this target, from the stored ids.
    pub(crate) async fn manager_account(
        &self,
        store: &dyn ports::Store,
        directory: &DirectoryId,
        manager: &EmployeeId,
    ) -> Result<Option<String>, ports::StoreError> {
        let object = UserId::derive(directory, manager);
        store
            .get_target_account(directory, self.id, object.as_str())
            .await
    }

    /// An adopted account stops being the old record's: its stored id is forgotten
    /// (so the old record's later deliveries never deprovision the rehire), and the
    /// adoption is audited.
    pub(super) async fn record_adoption(
        &self,
        engine: &Engine,
        directory: &DirectoryId,
        user: &DirectoryUser,
        from: &str,
        account: &str,
    ) -> Result<(), crate::EngineError> {
        if let Ok(old) = EmployeeId::parse(from) {
            let old_object = UserId::derive(directory, &old);
            engine
                .store
                .delete_target_account(directory, self.id, old_object.as_str())
                .await?;
        }
        crate::operate::audit::audit(
            engine,
            directory,
            ports::AuditAction::TargetChange,
            "sync",
            serde_json::json!({
                "change": "scim_account_adopted",
                "targetId": self.id.as_str(),
                "accountId": account,
                "fromEmployeeId": from,
                "toEmployeeId": user.employee_id.as_str(),
            }),
        )
        .await?;
        Ok(())
    }

    /// The user's account at the target by the match order, and how it was found.
    pub(super) async fn find_account(
        &self,
        client: &Client<'_>,
        user: &DirectoryUser,
        work_email: Option<&str>,
        user_name: Option<&str>,
        known: &Known<'_>,
    ) -> Result<Option<(Value, MatchedBy)>, StepError> {
        for key in &self.settings.match_order {
            let found = match key {
                ScimMatchKey::StoredId => match &known.account {
                    Some(id) => client.get_if_exists(id).await?,
                    None => None,
                },
                ScimMatchKey::ExternalId => {
                    client.find("externalId", user.employee_id.as_str()).await?
                }
                ScimMatchKey::WorkEmail => match work_email {
                    Some(email) => client.find("emails.value", email).await?,
                    None => None,
                },
                ScimMatchKey::UserName => match user_name {
                    Some(name) => client.find("userName", name).await?,
                    None => None,
                },
            };
            if let Some(account) = found {
                let by = match key {
                    ScimMatchKey::StoredId => MatchedBy::StoredId,
                    ScimMatchKey::ExternalId => MatchedBy::ExternalId,
                    ScimMatchKey::WorkEmail => MatchedBy::WorkEmail,
                    ScimMatchKey::UserName => MatchedBy::UserName,
                };
                return Ok(Some((account, by)));
            }
        }
        Ok(None)
    }

    /// Whether an account found by work email, userName or a 409 may be used for
    /// `user`: yes when it names no other employee; when it names one who is inactive
    /// or deleted here and adoption is allowed, it is adopted (recorded in `client`);
    /// otherwise the delivery is refused.
    pub(super) async fn claim(
        &self,
        client: &Client<'_>,
        existing: &Value,
        user: &DirectoryUser,
        matched_by: MatchedBy,
        known: &Known<'_>,
    ) -> Result<(), StepError> {
        if matches!(matched_by, MatchedBy::StoredId | MatchedBy::ExternalId) {
            return Ok(());
        }
        let Some(other) = foreign_owner(existing, user.employee_id.as_str()) else {
            return Ok(());
        };
        let inactive_here = match (known.store, EmployeeId::parse(other)) {
            (Some((store, directory)), Ok(other_id)) if self.settings.adopt_inactive_accounts => {
                let previous =
                    store
                        .get_user(directory, &other_id)
                        .await
                        .map_err(|e| StepError {
                            reason: format!("reading the employee whose account matched: {e}"),
                            retryable: e.is_retryable(),
                            ..StepError::default()
                        })?;
                previous
                    .is_some_and(|p| matches!(p.state, UserState::Inactive | UserState::Deleted))
            }
            _ => false,
        };
        if !inactive_here {
            return Err(another_employees_account(matched_by.as_str()));
        }
        info!(
            target_id = %self.id, employee_id = user.employee_id.as_str(), from_employee_id = other,
            resource_id = resource_id(existing).unwrap_or("?"), matched_by = matched_by.as_str(),
            "SCIM account adopted from an inactive employee"
        );
        if let Ok(mut landed) = client.landed.lock() {
            landed.adopted_from = Some(other.to_string());
        }
        Ok(())
    }
}
