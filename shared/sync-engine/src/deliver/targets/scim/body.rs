//! The SCIM request bodies and filters: the `eq` filter, whose account it is, and
//! what an update writes. An update touches only the attributes the target owns
//! ([`Owned`]): it compares, replaces and removes those, and leaves every other
//! attribute as the provider has it (its admins' values, another system's), for PUT
//! and PATCH alike.

use std::collections::BTreeSet;

use mapping::SCIM_ENTERPRISE_SCHEMA;
use serde_json::{Map, Value};

use super::*;

/// `attribute eq "value"`, with the value written as a JSON string, which is what the
/// filter grammar's compValue is (RFC 7644 §3.4.2.2): quotes and backslashes escaped.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    format!("{attribute} eq {quoted}")
}

pub(crate) fn resource_id(resource: &Value) -> Option<&str> {
    resource.get("id").and_then(Value::as_str)
}

pub(crate) fn meta_version(resource: &Value) -> Option<String> {
    resource
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The employee id an account's `externalId` names, when it names one that is not
/// `employee_id` (an account another employee's record created or was matched to).
pub(crate) fn foreign_owner<'v>(existing: &'v Value, employee_id: &str) -> Option<&'v str> {
    existing
        .get("externalId")
        .and_then(Value::as_str)
        .filter(|other| !other.is_empty() && *other != employee_id)
}

/// Why an account found by work email, userName or a 409 is not taken over.
pub(super) fn another_employees_account(matched_by: &str) -> StepError {
    StepError::permanent(format!(
        "the account found by {matched_by} belongs to another employee who is still active \
         here (its externalId differs), so it is not taken over; change one of the work \
         emails or the target's username source"
    ))
}

/// The attributes a target owns, parsed from [`domain::ScimConfig::owned_attributes`]:
/// core attributes by name, enterprise ones by `<enterprise URN>:<name>` (the URN alone
/// owns the whole extension). `externalId` is always owned (it is how the account is
/// found again); `id`, `userName`, `meta`, `schemas` and `groups` never are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    core: BTreeSet<String>,
    enterprise: BTreeSet<String>,
    whole_enterprise: bool,
}

/// Attributes an update never writes: identity, server-managed and read-only ones.
const NEVER_OWNED: [&str; 5] = ["id", "userName", "meta", "schemas", "groups"];

/// RFC 7643's User attributes (§4.1) a target may own; `userName`, `password` and the
/// read-only ones are not among them.
const CORE_USER_ATTRIBUTES: [&str; 19] = [
    "externalId",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
];

/// The enterprise extension (RFC 7643 §4.3) and its attributes.
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENTERPRISE_ATTRIBUTES: [&str; 6] = [
    "employeeNumber",
    "costCenter",
    "organization",
    "division",
    "department",
    "manager",
];

/// Whether `attribute` names something a target may own: a core User attribute, the
/// enterprise extension, or one of its attributes by full path.
pub fn is_ownable_attribute(attribute: &str) -> bool {
    if CORE_USER_ATTRIBUTES.contains(&attribute) || attribute == ENTERPRISE {
        return true;
    }
    attribute
        .strip_prefix(ENTERPRISE)
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|a| ENTERPRISE_ATTRIBUTES.contains(&a))
}

impl Owned {
    /// Parses a configured list.
    pub fn new<S: AsRef<str>>(attributes: &[S]) -> Self {
        let mut owned = Self {
            core: BTreeSet::from(["externalId".to_string()]),
            enterprise: BTreeSet::new(),
            whole_enterprise: false,
        };
        let prefix = format!("{SCIM_ENTERPRISE_SCHEMA}:");
        for a in attributes {
            let a = a.as_ref().trim();
            if a == SCIM_ENTERPRISE_SCHEMA {
                owned.whole_enterprise = true;
            } else if let Some(sub) = a.strip_prefix(&prefix) {
                owned.enterprise.insert(sub.to_string());
            } else if !a.is_empty() && !NEVER_OWNED.contains(&a) {
                owned.core.insert(a.to_string());
            }
        }
        owned
    }

    fn enterprise_names<'a>(&'a self, have: &'a Value, want: &'a Value) -> BTreeSet<&'a str> {
        if !self.whole_enterprise {
            return self.enterprise.iter().map(String::as_str).collect();
        }
        [have, want]
            .into_iter()
            .filter_map(|v| v.get(SCIM_ENTERPRISE_SCHEMA).and_then(Value::as_object))
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }
}

impl Default for Owned {
    fn default() -> Self {
        Self::new(&domain::SCIM_SEED_OWNED_ATTRIBUTES)
    }
}

/// What an update must change at an account: owned attributes to set and to remove.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Changes {
    /// Core attributes to set, with their values.
    set: Map<String, Value>,
    /// Enterprise attributes to set, with their values.
    set_enterprise: Map<String, Value>,
    /// Paths to remove (core names, or `<enterprise URN>:<name>`).
    remove: Vec<String>,
}

impl Changes {
    /// Nothing to write: the account holds everything this target owns.
    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_empty() && self.set_enterprise.is_empty() && self.remove.is_empty()
    }

    /// The changed attribute names, for reports and logs (never their values).
    pub(crate) fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.set.keys().cloned().collect();
        names.extend(self.set_enterprise.keys().cloned());
        names.extend(
            self.remove
                .iter()
                .map(|p| p.rsplit(':').next().unwrap_or(p).to_string()),
        );
        names.sort();
        names.dedup();
        names
    }
}

/// The owned attributes whose value at the account differs from our rendering.
pub(crate) fn changes(existing: &Value, desired: &Value, owned: &Owned) -> Changes {
    let mut out = Changes::default();
    for name in &owned.core {
        match (existing.get(name), desired.get(name)) {
            (have, Some(want)) if have != Some(want) => {
                out.set.insert(name.clone(), want.clone());
            }
            (Some(_), None) => out.remove.push(name.clone()),
            _ => {}
        }
    }
    let have_ext = existing.get(SCIM_ENTERPRISE_SCHEMA);
    let want_ext = desired.get(SCIM_ENTERPRISE_SCHEMA);
    for name in owned.enterprise_names(existing, desired) {
        let have = have_ext.and_then(|e| e.get(name));
        let want = want_ext.and_then(|e| e.get(name));
        match (have, want) {
            (have, Some(want)) if have != Some(want) => {
                out.set_enterprise.insert(name.to_string(), want.clone());
            }
            (Some(_), None) => out.remove.push(format!("{SCIM_ENTERPRISE_SCHEMA}:{name}")),
            _ => {}
        }
    }
    out
}

/// A PatchOp making the account hold `changes` (RFC 7644 §3.5.2): a `remove` per
/// cleared owned attribute and one path-less `replace` with the changed ones (the form
/// every provider takes). Enterprise attributes go inside the extension object, whose
/// other sub-attributes a path-less replace leaves unchanged (§3.5.2.3).
pub(super) fn patch_body(changes: &Changes) -> Value {
    let mut ops: Vec<Value> = changes
        .remove
        .iter()
        .map(|path| serde_json::json!({ "op": "remove", "path": path }))
        .collect();
    let mut value = changes.set.clone();
    if !changes.set_enterprise.is_empty() {
        value.insert(
            SCIM_ENTERPRISE_SCHEMA.into(),
            Value::Object(changes.set_enterprise.clone()),
        );
    }
    if !value.is_empty() {
        ops.push(serde_json::json!({ "op": "replace", "value": value }));
    }
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    })
}

/// The PUT body: the account as it is (its `id`, `userName` and every attribute this
/// target does not own), with the owned attributes as we render them.
pub(super) fn replacement(existing: &Value, desired: &Value, owned: &Owned) -> Value {
    let changes = changes(existing, desired, owned);
    let mut body = existing.clone();
    let Some(obj) = body.as_object_mut() else {
        return desired.clone();
    };
    obj.remove("meta");
    for (k, v) in changes.set {
        obj.insert(k, v);
    }
    let prefix = format!("{SCIM_ENTERPRISE_SCHEMA}:");
    let mut ext = obj
        .remove(SCIM_ENTERPRISE_SCHEMA)
        .and_then(|e| match e {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    for path in &changes.remove {
        match path.strip_prefix(&prefix) {
            Some(sub) => {
                ext.remove(sub);
            }
            None => {
                obj.remove(path);
            }
        }
    }
    ext.extend(changes.set_enterprise);
    if !ext.is_empty() {
        obj.insert(SCIM_ENTERPRISE_SCHEMA.into(), Value::Object(ext));
    }
    // The schemas the account already declares, and ours.
    let mut schemas: Vec<Value> = obj
        .get("schemas")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for s in desired
        .get("schemas")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !schemas.contains(s) {
            schemas.push(s.clone());
        }
    }
    obj.insert("schemas".into(), Value::Array(schemas));
    if !obj.contains_key("userName") {
        if let Some(name) = desired.get("userName") {
            obj.insert("userName".into(), name.clone());
        }
    }
    body
}
