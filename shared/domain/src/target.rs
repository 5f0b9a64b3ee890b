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
    },
    /// A Litmos-style JSON upsert endpoint.
    HttpUpsert {
        /// The URL; secret parts are in the secret store.
        url: String,
        /// Fields sent.
        fields: Vec<String>,
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
