//! Group push to a SCIM 2.0 provider (RFC 7644 `/Groups`), for SCIM targets with
//! `pushGroups`: each directory group becomes one SCIM Group (`displayName` = the
//! group's name, `externalId` = its stable id) and its members are the users' accounts
//! at that provider.
//!
//! - `group.created|updated` finds the group (by its remembered resource id, then
//!   `externalId`, then `displayName`), creates it when missing and renames it when its
//!   name changed; `group.deleted` deletes it.
//! - `group.user_added|user_removed` are state transfer like user deliveries: the
//!   user's *current* memberships decide whether the account should be a member, so a
//!   late or duplicated membership event never undoes a newer one. Membership is
//!   changed with PATCH `add`/`remove` when the provider announces PATCH, else with a
//!   PUT of the group's member list, and nothing is written when it already holds.
//! - A member whose account does not exist at the provider yet (its user event may
//!   still be on its way, in another message group) is a retryable failure, so the
//!   retry path adds it once the account exists; a user the target's filter refuses
//!   is never added.

use domain::{ChangeEvent, Directory, EmployeeId, EventType, Group, Target, UserState};
use ports::StoreError;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tracing::info;

use crate::deliver::attempt::{Attempt, TargetOutcome};
use crate::deliver::targets::scim::{
    delivered, meta_version, resource_id, status_error, Client, ScimTarget, StepError,
};
use crate::deps::Engine;

/// The SCIM Group schema (RFC 7643 §4.2).
pub const SCIM_GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn store_error(e: StoreError) -> StepError {
    StepError {
        reason: format!("store: {e}"),
        retryable: e.is_retryable(),
        ..StepError::default()
    }
}

impl ScimTarget<'_> {
    /// Delivers one group or membership event.
    pub(crate) async fn deliver_group(
        &self,
        engine: &Engine,
        directory: &Directory,
        target: &Target,
        event: &ChangeEvent,
    ) -> Attempt {
        match self.group_step(engine, directory, target, event).await {
            Ok(outcome) => Attempt::plain(outcome),
            Err(e) => e.into(),
        }
    }

    async fn group_step(
        &self,
        engine: &Engine,
        directory: &Directory,
        target: &Target,
        event: &ChangeEvent,
    ) -> Result<TargetOutcome, StepError> {
        let patch = self.patch_supported(engine).await;
        let client = self.client(&engine.http, engine.clock.as_ref(), "Groups", patch)?;
        let group_id = match event.event_type {
            EventType::GroupUserAdded | EventType::GroupUserRemoved => event
                .data
                .get("groupId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => event.object_id.clone(),
        };
        // State transfer: the group as stored now, not as the event carried it.
        let group = engine
            .store
            .list_groups(&directory.id)
            .await
            .map_err(store_error)?
            .into_iter()
            .find(|g| g.id.as_str() == group_id);
        let Some(group) = group else {
            return Ok(TargetOutcome::Skipped {
                reason: "the group is not in the store".into(),
            });
        };
        match event.event_type {
            EventType::GroupCreated | EventType::GroupUpdated | EventType::GroupDeleted => {
                if group.deleted {
                    return self
                        .delete_group(engine, directory, &client, &group, event.version)
                        .await;
                }
                self.ensure_group(engine, directory, &client, &group)
                    .await?;
                Ok(delivered(StatusCode::OK, event.version))
            }
            EventType::GroupUserAdded | EventType::GroupUserRemoved => {
                if group.deleted {
                    return Ok(TargetOutcome::Skipped {
                        reason: "the group has been deleted".into(),
                    });
                }
                self.membership(engine, directory, target, &client, &group, event)
                    .await
            }
            other => Ok(TargetOutcome::Skipped {
                reason: format!("SCIM targets do not receive {} events", other.as_str()),
            }),
        }
    }

    /// The group's resource id at the provider, creating or renaming it as needed.
    async fn ensure_group(
        &self,
        engine: &Engine,
        directory: &Directory,
        client: &Client<'_>,
        group: &Group,
    ) -> Result<String, StepError> {
        let known = engine
            .store
            .get_target_account(&directory.id, self.id, group.id.as_str())
            .await
            .map_err(store_error)?;
        let mut found = match &known {
            Some(id) => client.get_if_exists(id).await?,
            None => None,
        };
        if found.is_none() {
            found = client.find("externalId", group.id.as_str()).await?;
        }
        if found.is_none() {
            found = client.find("displayName", &group.name).await?;
        }
        let id = match found {
            Some(existing) => {
                let id = resource_id(&existing)
                    .ok_or_else(|| StepError::permanent("the matched SCIM group has no id"))?
                    .to_string();
                let renamed = existing.get("displayName").and_then(Value::as_str)
                    != Some(group.name.as_str());
                let tagged =
                    existing.get("externalId").and_then(Value::as_str) == Some(group.id.as_str());
                if renamed || !tagged {
                    let mut body = existing.clone();
                    if let Some(obj) = body.as_object_mut() {
                        obj.remove("meta");
                        obj.insert("displayName".into(), json!(group.name));
                        obj.insert("externalId".into(), json!(group.id.as_str()));
                    }
                    let changes =
                        json!({"displayName": group.name, "externalId": group.id.as_str()});
                    self.write_group(client, &id, &existing, body, changes)
                        .await?;
                }
                id
            }
            None => {
                let body = json!({
                    "schemas": [SCIM_GROUP_SCHEMA],
                    "displayName": group.name,
                    "externalId": group.id.as_str(),
                    "members": [],
                });
                let answer = client
                    .send(Method::POST, client.base.clone(), Some(&body), None)
                    .await
                    .map_err(|e| e.during("POST /Groups"))?;
                if !answer.status.is_success() {
                    return Err(status_error("POST /Groups", &answer));
                }
                let id = answer
                    .body
                    .as_ref()
                    .and_then(resource_id)
                    .ok_or_else(|| StepError::permanent("POST /Groups answered without an id"))?
                    .to_string();
                info!(target_id = %self.id, group_id = %group.id, resource_id = %id, "SCIM group created");
                id
            }
        };
        if known.as_deref() != Some(id.as_str()) {
            engine
                .store
                .put_target_account(&directory.id, self.id, group.id.as_str(), &id)
                .await
                .map_err(store_error)?;
        }
        Ok(id)
    }

    /// Replaces attributes of a group: PATCH `replace` of `changes` when announced,
    /// else PUT of `full`.
    async fn write_group(
        &self,
        client: &Client<'_>,
        id: &str,
        existing: &Value,
        full: Value,
        changes: Value,
    ) -> Result<StatusCode, StepError> {
        let (method, body, op) = if client.patch {
            (
                Method::PATCH,
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": changes}],
                }),
                "PATCH /Groups/{id}",
            )
        } else {
            (Method::PUT, full, "PUT /Groups/{id}")
        };
        let tag = meta_version(existing);
        let answer = client
            .send(method, client.resource_url(id), Some(&body), tag.as_deref())
            .await
            .map_err(|e| e.during(op))?;
        if !answer.status.is_success() {
            return Err(status_error(op, &answer));
        }
        Ok(answer.status)
    }

    async fn delete_group(
        &self,
        engine: &Engine,
        directory: &Directory,
        client: &Client<'_>,
        group: &Group,
        version: u64,
    ) -> Result<TargetOutcome, StepError> {
        let known = engine
            .store
            .get_target_account(&directory.id, self.id, group.id.as_str())
            .await
            .map_err(store_error)?;
        let existing = match &known {
            Some(id) => client.get_if_exists(id).await?,
            None => client.find("externalId", group.id.as_str()).await?,
        };
        let Some(existing) = existing else {
            return Ok(TargetOutcome::Skipped {
                reason: "the group is not at the target".into(),
            });
        };
        let outcome = client.delete(&existing, version).await?;
        engine
            .store
            .delete_target_account(&directory.id, self.id, group.id.as_str())
            .await
            .map_err(store_error)?;
        Ok(outcome)
    }

    async fn membership(
        &self,
        engine: &Engine,
        directory: &Directory,
        target: &Target,
        client: &Client<'_>,
        group: &Group,
        event: &ChangeEvent,
    ) -> Result<TargetOutcome, StepError> {
        let employee = event
            .data
            .get("employeeId")
            .and_then(Value::as_str)
            .and_then(|e| EmployeeId::parse(e).ok())
            .ok_or_else(|| StepError::permanent("the membership event names no employee"))?;
        let Some(user) = engine
            .store
            .get_user(&directory.id, &employee)
            .await
            .map_err(store_error)?
        else {
            return Ok(TargetOutcome::Skipped {
                reason: "the user is not in the store".into(),
            });
        };
        let want = user.group_ids.contains(&group.id)
            && user.state != UserState::Deleted
            && target.admits(&user).is_ok();
        let account = engine
            .store
            .get_target_account(&directory.id, self.id, user.id.as_str())
            .await
            .map_err(store_error)?;
        let Some(account) = account else {
            if want {
                return Err(StepError {
                    reason: "the user has no account at this target yet; retryable".into(),
                    retryable: true,
                    ..StepError::default()
                });
            }
            return Ok(TargetOutcome::Skipped {
                reason: "the user has no account at this target".into(),
            });
        };
        let group_rid = self.ensure_group(engine, directory, client, group).await?;
        let (current, _) = client.get(&group_rid).await?;
        let members: Vec<Value> = current
            .get("members")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let is_member = members
            .iter()
            .any(|m| m.get("value").and_then(Value::as_str) == Some(account.as_str()));
        if is_member == want {
            return Ok(delivered(StatusCode::OK, event.version));
        }
        let (method, body, op) = if client.patch {
            let operation = if want {
                json!({"op": "add", "path": "members", "value": [{"value": account}]})
            } else {
                json!({"op": "remove", "path": format!("members[value eq {}]", json!(account))})
            };
            (
                Method::PATCH,
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [operation],
                }),
                "PATCH /Groups/{id}",
            )
        } else {
            let mut members: Vec<Value> = members
                .into_iter()
                .filter(|m| m.get("value").and_then(Value::as_str) != Some(account.as_str()))
                .collect();
            if want {
                members.push(json!({"value": account}));
            }
            let mut full = current.clone();
            if let Some(obj) = full.as_object_mut() {
                obj.remove("meta");
                obj.insert("members".into(), Value::Array(members));
            }
            (Method::PUT, full, "PUT /Groups/{id}")
        };
        let tag = meta_version(&current);
        let answer = client
            .send(
                method,
                client.resource_url(&group_rid),
                Some(&body),
                tag.as_deref(),
            )
            .await
            .map_err(|e| e.during(op))?;
        if !answer.status.is_success() {
            return Err(status_error(op, &answer));
        }
        info!(target_id = %self.id, group_id = %group.id, member = want, "SCIM group membership changed");
        Ok(delivered(answer.status, event.version))
    }
}
