//! Where a directory's changes go: target kinds, their filters and settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::TargetId;
use crate::user::UserState;

/// Which events a target receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TargetFilter {
    /// User states the target receives; empty means every state.
    #[serde(default)]
    pub states: Vec<UserState>,
    /// Only users with a work email.
    #[serde(default)]
    pub require_work_email: bool,
    /// Field equality or set membership: field name -> accepted values.
    #[serde(default)]
    pub field_in: BTreeMap<String, Vec<String>>,
}

/// Where a target delivers. Secrets (signing secrets, tokens) live in the secret store,
/// keyed by target id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetKind {
    /// The customer's app, signed per Standard Webhooks.
    AppWebhook {
        /// The receiving URL.
        url: String,
    },
    /// A SCIM 2.0 service provider.
    Scim {
        /// The SCIM base URL (ending before `/Users`).
        base_url: String,
        /// How users are named, deprovisioned and grouped at this provider.
        #[serde(default)]
        scim: ScimConfig,
    },
    /// A Litmos-style JSON upsert endpoint: one POST per user with the chosen fields.
    /// Which users it receives is the target's [`TargetFilter`] (the "gate", e.g. only
    /// employees whose "Litmos Access" checkbox is true).
    HttpUpsert {
        /// The URL without its secret parts: the target's `url_params` from the secret
        /// store (e.g. an API key) are appended as query parameters.
        url: String,
        /// Fields sent (upsert body keys); empty sends every field.
        fields: Vec<String>,
        /// Body fields that must have a value; a user lacking one is skipped with a
        /// per-record reason instead of being sent. `username` (the work email) is
        /// always required.
        #[serde(default)]
        required: Vec<String>,
    },
    /// A customer's EventBridge bus.
    EventBridge {
        /// The bus ARN.
        bus_arn: String,
    },
}

/// One destination of a directory's changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Unique within the directory.
    pub id: TargetId,
    /// Kind and address.
    #[serde(flatten)]
    pub kind: TargetKind,
    /// Which changes it gets.
    #[serde(default)]
    pub filter: TargetFilter,
    /// Disabled targets (e.g. after a 410) receive nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Where a SCIM `userName` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimUserName {
    /// The part of the work email before '@' (JumpCloud's default).
    #[default]
    EmailLocalPart,
    /// The whole work email.
    FullEmail,
    /// BambooHR's "Employee #".
    EmployeeNumber,
}

/// How a leaver leaves a SCIM provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimDeprovision {
    /// `active: false`; the account stays, so a rehire reactivates it.
    #[default]
    Deactivate,
    /// DELETE (only when an operator asks for it: a rehire then gets a new account).
    Delete,
}

/// Per-target SCIM behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScimConfig {
    /// Where `userName` comes from (used only when an account is created: an existing
    /// account's username is never overwritten).
    pub user_name: ScimUserName,
    /// How leavers are deprovisioned.
    pub deprovision: ScimDeprovision,
    /// Whether a pending user (future hire) is sent with `active: true`.
    pub pending_active: bool,
    /// Push groups (`/Groups` with their members) as well as users.
    pub push_groups: bool,
}
