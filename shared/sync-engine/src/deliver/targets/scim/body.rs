//! The SCIM request bodies and filters: the `eq` filter, what an account already
//! holds, whose account it is, the PATCH body and the PUT replacement.

use serde_json::Value;

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

/// Whether the account already holds exactly what a PUT would write (server-managed
/// `meta` aside). A server that normalises values simply gets the PUT.
pub(super) fn holds_already(existing: &Value, body: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("meta");
        }
        v
    };
    strip(existing) == strip(body)
}

/// A userName match (or 409) may land on another employee's account when two work
/// emails share a local part; adopting it would hand one person's account to another.
pub(super) fn refuse_if_another_employees(
    existing: &Value,
    employee_id: &str,
) -> Result<(), StepError> {
    match existing.get("externalId").and_then(Value::as_str) {
        Some(other) if !other.is_empty() && other != employee_id => Err(StepError::permanent(
            "the account holding this userName belongs to another employee (its externalId \
             differs), so it is not taken over; change one of the work emails or the \
             target's username source",
        )),
        _ => Ok(()),
    }
}

/// Attributes a PATCH never touches: identity, server-managed, and read-only ones.
pub(super) const NOT_PATCHED: [&str; 5] = ["id", "userName", "meta", "schemas", "groups"];

/// A PatchOp turning `current` into `body`: one path-less `replace` with every
/// attribute whose value differs (RFC 7644 §3.5.2.3, the form every provider takes)
/// and a `remove` per attribute the account has and our rendering no longer does (a
/// cleared value), so the result equals what a PUT would leave.
pub(super) fn patch_body(current: &Value, body: &Value) -> Value {
    let empty = serde_json::Map::new();
    let have = current.as_object().unwrap_or(&empty);
    let want = body.as_object().unwrap_or(&empty);
    let mut changed = serde_json::Map::new();
    for (k, v) in want {
        if !NOT_PATCHED.contains(&k.as_str()) && have.get(k) != Some(v) {
            changed.insert(k.clone(), v.clone());
        }
    }
    let mut ops: Vec<Value> = have
        .keys()
        .filter(|k| !NOT_PATCHED.contains(&k.as_str()) && !want.contains_key(*k))
        .map(|k| serde_json::json!({ "op": "remove", "path": k }))
        .collect();
    if !changed.is_empty() {
        ops.push(serde_json::json!({ "op": "replace", "value": changed }));
    }
    serde_json::json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops,
    })
}

/// The PUT body: our rendering, with the account's own `id` and `userName` kept.
pub(super) fn replacement(existing: &Value, desired: &Value) -> Value {
    let mut body = desired.clone();
    if let Some(obj) = body.as_object_mut() {
        obj.remove("meta");
        if let Some(id) = existing.get("id") {
            obj.insert("id".into(), id.clone());
        }
        if let Some(name) = existing.get("userName").filter(|n| n.is_string()) {
            obj.insert("userName".into(), name.clone());
        }
    }
    body
}
