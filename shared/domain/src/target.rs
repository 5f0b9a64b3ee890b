//! Where a directory's changes go: target kinds, their filters and settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
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
        /// The body's format: this sync's own events (the default) or WorkOS
        /// Directory Sync's (`dsync.*`), signed per Standard Webhooks either way.
        #[serde(default)]
        format: EventFormat,
        /// Which user attributes the target receives; none sends every attribute
        /// (raw attributes only as far as the directory's allowlist kept them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        projection: Option<FieldProjection>,
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
        /// What a user who leaves the target's audience (its filter, e.g. the "Litmos
        /// Access" checkbox unticked) gets: deactivated once (the default) or left as
        /// it is at the target.
        #[serde(default)]
        gate_exit: GateExit,
    },
    /// A customer's EventBridge bus.
    EventBridge {
        /// The bus ARN.
        bus_arn: String,
        /// Which user attributes the bus receives; none sends every attribute.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        projection: Option<FieldProjection>,
    },
}

/// The body format of an app-webhook target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventFormat {
    /// This sync's own versioned change events (`user.created`, ... with the full
    /// object).
    #[default]
    Native,
    /// WorkOS Directory Sync's events (`dsync.user.created`, ... with WorkOS's
    /// directory user, group and directory objects), so an app written against WorkOS
    /// consumes them unchanged. Events WorkOS has no counterpart for are not sent.
    Workos,
}

impl EventFormat {
    /// The name operators and the audit log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Workos => "workos",
        }
    }
}

/// What an HTTP upsert target does with a user it had who no longer passes its filter
/// (the gate): BambooHR only stops sending, so without a choice the learner would stay
/// active there for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateExit {
    /// Send the user once more with `active: false`, then nothing while they stay out.
    #[default]
    Deactivate,
    /// Send nothing: the account stays as it was last sent.
    Leave,
}

impl GateExit {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deactivate => "deactivate",
            Self::Leave => "leave",
        }
    }
}

/// The user attributes one target receives: a projection of the
/// [`crate::DirectoryUser`] in the events it is sent.
///
/// Each entry names a user attribute as it appears in the event (`firstName`,
/// `emails`, `workAddress`), a whole attribute map (`rawAttributes`,
/// `customAttributes`) or one key of such a map (`rawAttributes.Shirt size`,
/// `customAttributes.costCenter`). The user's identity (`id`, `directoryId`,
/// `employeeId`, `state`, `version`, `groupIds`) is always sent: a receiver cannot act
/// on a change without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldProjection(Vec<String>);

/// User attributes every projection keeps.
pub const PROJECTION_IDENTITY: [&str; 6] = [
    "id",
    "directoryId",
    "employeeId",
    "state",
    "version",
    "groupIds",
];

impl FieldProjection {
    /// Parses a projection: every entry must name a user attribute (see the type's
    /// documentation); an error names the first that does not.
    pub fn parse(entries: &[String]) -> Result<Self, DomainError> {
        let known = crate::user::DirectoryUser::attribute_names();
        let mut out: Vec<String> = Vec::new();
        for raw in entries {
            let entry = raw.trim();
            let ok = match entry.split_once('.') {
                Some((map, key)) => {
                    matches!(map, "rawAttributes" | "customAttributes") && !key.trim().is_empty()
                }
                None => known.contains(&entry),
            };
            if !ok {
                return Err(DomainError::invalid(
                    "projection",
                    format!(
                        "{entry:?} is not a user attribute (one of {}, or rawAttributes.<field> / customAttributes.<name>)",
                        known.join(", ")
                    ),
                ));
            }
            if !out.iter().any(|e| e == entry) {
                out.push(entry.to_string());
            }
        }
        Ok(Self(out))
    }

    /// The entries, as configured.
    pub fn entries(&self) -> &[String] {
        &self.0
    }

    /// `user` with every attribute outside this projection cleared (absent values,
    /// empty lists and maps): for renderings that need a whole user.
    pub fn clear_user(&self, user: &crate::DirectoryUser) -> crate::DirectoryUser {
        let full = serde_json::to_value(user).expect("a user serializes");
        let projected = self.apply(&full);
        let mut base = serde_json::to_value(crate::DirectoryUser::new(
            user.directory_id.clone(),
            user.employee_id.clone(),
            user.state,
        ))
        .expect("a user serializes");
        if let (Some(base), Some(projected)) = (base.as_object_mut(), projected.as_object()) {
            for (k, v) in projected {
                base.insert(k.clone(), v.clone());
            }
            // Bookkeeping that is not an attribute of the person.
            for k in ["fingerprint", "sourceTimestamp", "createdAt"] {
                if let Some(v) = full.get(k) {
                    base.insert(k.to_string(), v.clone());
                }
            }
        }
        serde_json::from_value(base).unwrap_or_else(|_| user.clone())
    }

    /// `user` (a serialized [`crate::DirectoryUser`]) cut down to this projection.
    pub fn apply(&self, user: &serde_json::Value) -> serde_json::Value {
        let Some(obj) = user.as_object() else {
            return user.clone();
        };
        let mut out = serde_json::Map::new();
        for (k, v) in obj {
            if PROJECTION_IDENTITY.contains(&k.as_str()) || self.0.iter().any(|e| e == k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for map in ["rawAttributes", "customAttributes"] {
            if out.contains_key(map) {
                continue;
            }
            let prefix = format!("{map}.");
            let keys: Vec<&str> = self
                .0
                .iter()
                .filter_map(|e| e.strip_prefix(&prefix))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let picked: serde_json::Map<String, serde_json::Value> = obj
                .get(map)
                .and_then(|m| m.as_object())
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| keys.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            out.insert(map.to_string(), serde_json::Value::Object(picked));
        }
        serde_json::Value::Object(out)
    }
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

/// Which given name a SCIM account carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimNameSource {
    /// BambooHR's First Name (the seed table's mapping; the preferred name then shows
    /// only in `displayName`).
    #[default]
    First,
    /// The preferred name when there is one, else the first name.
    Preferred,
}

/// One way of finding an employee's existing account at a SCIM provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimMatchKey {
    /// The account's resource id remembered from an earlier delivery.
    StoredId,
    /// `externalId` = the BambooHR employee id.
    ExternalId,
    /// The work email among the account's `emails`.
    WorkEmail,
    /// The `userName` this target would give the employee.
    UserName,
}

/// The attributes a SCIM target owns by default: the seed (JumpCloud) table. Core
/// attributes by name; enterprise extension attributes by their full path
/// (`<schema URN>:<attribute>`, RFC 7644 §3.10). `userName` is never in it: it is
/// chosen once, when the account is created, and never overwritten.
pub const SCIM_SEED_OWNED_ATTRIBUTES: [&str; 13] = [
    "externalId",
    "name",
    "displayName",
    "title",
    "active",
    "emails",
    "phoneNumbers",
    "addresses",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:organization",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
];

/// Per-target SCIM behaviour, as the control plane stores and shows it (camelCase
/// JSON). Every field has a default, so records stored before a field existed read
/// back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Which name `name.givenName` carries: `first` (default, the seed table) or
    /// `preferred` (preferred name, else first name). `displayName` is always the
    /// preferred (else first) name and the last name.
    pub name_source: ScimNameSource,
    /// How an employee's existing account is looked for, in order; the first key that
    /// finds one wins. Default (and what an empty list means): stored id, externalId,
    /// work email, userName.
    pub match_order: Vec<ScimMatchKey>,
    /// Whether a new BambooHR record may adopt an account whose `externalId` names
    /// another employee who is inactive or deleted here, found by the same work email
    /// or userName (a rehire entered as a new employee). Default true; every adoption
    /// is written to the audit log.
    pub adopt_inactive_accounts: bool,
    /// The attributes this target owns: only these are written by an update (replaced,
    /// or removed when BambooHR no longer has a value). Others set at the provider (its
    /// admins' values, another system's) are left as they are. Core attributes by name
    /// (`title`, `phoneNumbers`), enterprise ones by full path
    /// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`).
    /// Default: [`SCIM_SEED_OWNED_ATTRIBUTES`].
    pub owned_attributes: Vec<String>,
    /// Country names (as BambooHR spells them) mapped to ISO 3166-1 alpha-2 codes,
    /// consulted before the built-in ISO table; e.g. `{"UK": "GB"}`. Matched
    /// ignoring case, spaces and punctuation. A value that is not an alpha-2 code is
    /// ignored, so a non-ISO country is never sent.
    pub country_codes: BTreeMap<String, String>,
    /// Hours between reconciliations of this target (its accounts read back and drift
    /// repaired); 0 runs one only on demand and after a settings change. Default 24.
    pub reconcile_every_hours: u32,
}

impl ScimConfig {
    /// The match order used when none is configured.
    pub const DEFAULT_MATCH_ORDER: [ScimMatchKey; 4] = [
        ScimMatchKey::StoredId,
        ScimMatchKey::ExternalId,
        ScimMatchKey::WorkEmail,
        ScimMatchKey::UserName,
    ];
}

impl TargetKind {
    /// An app-webhook target in this sync's own format, receiving every attribute.
    pub fn app_webhook(url: String) -> Self {
        Self::AppWebhook {
            url,
            format: EventFormat::Native,
            projection: None,
        }
    }

    /// An EventBridge target receiving every attribute.
    pub fn event_bridge(bus_arn: String) -> Self {
        Self::EventBridge {
            bus_arn,
            projection: None,
        }
    }

    /// The target's field projection, for the kinds that have one.
    pub fn projection(&self) -> Option<&FieldProjection> {
        match self {
            Self::AppWebhook { projection, .. } | Self::EventBridge { projection, .. } => {
                projection.as_ref()
            }
            Self::Scim { .. } | Self::HttpUpsert { .. } => None,
        }
    }
}

impl Default for ScimConfig {
    fn default() -> Self {
        Self {
            user_name: ScimUserName::default(),
            deprovision: ScimDeprovision::default(),
            pending_active: false,
            push_groups: false,
            name_source: ScimNameSource::default(),
            match_order: Self::DEFAULT_MATCH_ORDER.to_vec(),
            adopt_inactive_accounts: true,
            owned_attributes: SCIM_SEED_OWNED_ATTRIBUTES
                .iter()
                .map(|a| a.to_string())
                .collect(),
            country_codes: BTreeMap::new(),
            reconcile_every_hours: 24,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scim_config_stored_before_the_new_settings_reads_back_with_their_defaults() {
        let old = serde_json::json!({"userName": "full_email", "deprovision": "delete",
                                     "pendingActive": true, "pushGroups": true});
        let config: ScimConfig = serde_json::from_value(old).unwrap();
        assert_eq!(config.user_name, ScimUserName::FullEmail);
        assert_eq!(config.deprovision, ScimDeprovision::Delete);
        assert!(config.pending_active && config.push_groups);
        assert_eq!(config.name_source, ScimNameSource::First);
        assert_eq!(config.match_order, ScimConfig::DEFAULT_MATCH_ORDER.to_vec());
        assert!(config.adopt_inactive_accounts);
        assert_eq!(
            config.owned_attributes.len(),
            SCIM_SEED_OWNED_ATTRIBUTES.len()
        );
        assert!(config.country_codes.is_empty());
    }

    #[test]
    fn a_projection_keeps_the_identity_the_named_attributes_and_the_named_raw_keys() {
        let p = FieldProjection::parse(&[
            "firstName".into(),
            "rawAttributes.Shirt size".into(),
            "customAttributes.costCenter".into(),
        ])
        .unwrap();
        let user = serde_json::json!({
            "id": "usr_1", "directoryId": "acme", "employeeId": "7", "state": "active",
            "version": 3, "groupIds": [], "firstName": "Ada", "lastName": "Lovelace",
            "rawAttributes": {"Shirt size": "M", "Pay Rate": "100"},
            "customAttributes": {"costCenter": "R&D", "badge": "1"},
        });
        let out = p.apply(&user);
        assert_eq!(out["firstName"], "Ada");
        assert_eq!(out["employeeId"], "7");
        assert!(out.get("lastName").is_none());
        assert_eq!(out["rawAttributes"], serde_json::json!({"Shirt size": "M"}));
        assert_eq!(
            out["customAttributes"],
            serde_json::json!({"costCenter": "R&D"})
        );
    }

    #[test]
    fn a_projection_naming_no_user_attribute_is_refused_with_its_name() {
        let err = FieldProjection::parse(&["salary".into()]).unwrap_err();
        assert!(err.to_string().contains("\"salary\""), "{err}");
        assert!(FieldProjection::parse(&["otherMap.x".into()]).is_err());
        assert!(FieldProjection::parse(&["rawAttributes.".into()]).is_err());
    }

    #[test]
    fn an_app_webhook_stored_before_formats_existed_reads_back_in_the_native_format() {
        let t: TargetKind = serde_json::from_value(
            serde_json::json!({"kind": "app_webhook", "url": "https://a/h"}),
        )
        .unwrap();
        assert_eq!(t, TargetKind::app_webhook("https://a/h".into()));
        let v = serde_json::to_value(TargetKind::AppWebhook {
            url: "https://a/h".into(),
            format: EventFormat::Workos,
            projection: Some(FieldProjection::parse(&["emails".into()]).unwrap()),
        })
        .unwrap();
        assert_eq!(v["format"], "workos");
        assert_eq!(v["projection"], serde_json::json!(["emails"]));
    }

    #[test]
    fn a_scim_config_serializes_in_camel_case_with_snake_case_values() {
        let mut config = ScimConfig {
            name_source: ScimNameSource::Preferred,
            match_order: vec![ScimMatchKey::WorkEmail, ScimMatchKey::UserName],
            ..ScimConfig::default()
        };
        config.country_codes.insert("UK".into(), "GB".into());
        let v = serde_json::to_value(&config).unwrap();
        assert_eq!(v["nameSource"], "preferred");
        assert_eq!(
            v["matchOrder"],
            serde_json::json!(["work_email", "user_name"])
        );
        assert_eq!(v["adoptInactiveAccounts"], true);
        assert_eq!(v["countryCodes"]["UK"], "GB");
        assert!(v["ownedAttributes"]
            .as_array()
            .unwrap()
            .contains(&"title".into()));
        let back: ScimConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, config);
    }
}
