//! Data minimisation of raw attributes: which of the fields BambooHR sent are kept
//! under `rawAttributes`, and how large they may be.
//!
//! BambooHR sends whatever a field-based webhook monitors or a request names, which
//! may include a pay rate or an SSN an admin added. Only these are kept:
//!
//! * fields the mapping uses (any built-in field, in any vocabulary or by an admin
//!   alias), and the custom-field map's keys;
//! * the directory's allowlist: by default its extra fields and group sources;
//!   configured, the fields listed (matched by name ignoring case, spaces and a
//!   trailing ':', or as the same built-in field under another vocabulary).
//!
//! Only scalar values (text, number, true/false, null) are kept, each at most
//! [`RAW_VALUE_MAX_BYTES`] bytes of JSON; a user keeps at most [`RAW_TOTAL_MAX_BYTES`]
//! bytes of raw attributes (keys and values, JSON), the first keys in sorted order.
//! Anything else is dropped before it is stored, so it reaches no target.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::record::{Identity, MappingConfig, Resolver};

/// Largest raw value kept, in bytes of its JSON text (a longer one is dropped, not cut:
/// a cut value would read as a different value).
pub const RAW_VALUE_MAX_BYTES: usize = 1024;

/// Largest total of a user's raw attributes, in bytes of keys and JSON values.
pub const RAW_TOTAL_MAX_BYTES: usize = 16 * 1024;

/// Which raw keys a directory keeps; built from its [`MappingConfig`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawAllowlist {
    aliases: BTreeMap<String, Identity>,
    allowed: BTreeSet<Identity>,
}

impl RawAllowlist {
    /// The allowlist of a mapping configuration: mapped fields, custom-field map keys
    /// and [`MappingConfig::raw_allowlist`].
    pub fn new(cfg: &MappingConfig) -> Self {
        let resolver = Resolver::new(cfg);
        let mut allowed: BTreeSet<Identity> = resolver.custom_identities().cloned().collect();
        allowed.extend(cfg.raw_allowlist.iter().map(|k| resolver.identity(k)));
        Self {
            aliases: resolver.aliases().clone(),
            allowed,
        }
    }

    /// Whether a raw key is kept (its value not yet judged).
    pub fn admits(&self, key: &str) -> bool {
        match Resolver::identity_with(&self.aliases, key) {
            Identity::Field(_) => true,
            other => self.allowed.contains(&other),
        }
    }

    /// Whether `key` with `value` is kept: admitted, scalar, and within the value cap.
    pub fn keeps(&self, key: &str, value: &Value) -> bool {
        self.admits(key) && is_small_scalar(value)
    }

    /// Drops every key this allowlist does not keep, then enforces the total cap.
    pub fn minimise(&self, raw: &mut BTreeMap<String, Value>) {
        raw.retain(|k, v| self.keeps(k, v));
        cap_total(raw);
    }
}

/// A scalar whose JSON is at most [`RAW_VALUE_MAX_BYTES`].
pub fn is_small_scalar(value: &Value) -> bool {
    match value {
        Value::Array(_) | Value::Object(_) => false,
        Value::String(s) => s.len() + 2 <= RAW_VALUE_MAX_BYTES,
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

fn size(key: &str, value: &Value) -> usize {
    key.len() + value.to_string().len()
}

/// Keeps the first keys (sorted) whose total stays within [`RAW_TOTAL_MAX_BYTES`].
pub fn cap_total(raw: &mut BTreeMap<String, Value>) {
    let mut total = 0usize;
    raw.retain(|k, v| {
        total += size(k, v);
        total <= RAW_TOTAL_MAX_BYTES
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(allow: &[&str]) -> MappingConfig {
        MappingConfig {
            custom_field_map: BTreeMap::from([("Litmos Access".into(), "litmos".into())]),
            raw_allowlist: allow.iter().map(|s| s.to_string()).collect(),
            ..MappingConfig::default()
        }
    }

    #[test]
    fn mapped_fields_custom_keys_and_listed_fields_are_kept_in_any_spelling() {
        let a = RawAllowlist::new(&cfg(&["Shirt Size"]));
        for k in [
            "workEmail",
            "Work Email",
            "jobInformationJobTitle",
            "litmos access",
            "LITMOS ACCESS:",
            "shirtSize",
            "SHIRT SIZE:",
        ] {
            assert!(a.admits(k), "{k}");
        }
        for k in ["SSN", "Pay Rate", "payRate", "ethnicity"] {
            assert!(!a.admits(k), "{k}");
        }
    }

    #[test]
    fn only_small_scalars_are_kept() {
        let a = RawAllowlist::new(&cfg(&["notes", "tags"]));
        assert!(a.keeps("notes", &json!("short")));
        assert!(a.keeps("notes", &json!(null)));
        assert!(a.keeps("notes", &json!(12.5)));
        assert!(!a.keeps("tags", &json!(["a", "b"])));
        assert!(!a.keeps("tags", &json!({"a": 1})));
        let long = "x".repeat(RAW_VALUE_MAX_BYTES);
        assert!(!a.keeps("notes", &json!(long)));
        let fits = "x".repeat(RAW_VALUE_MAX_BYTES - 2);
        assert!(a.keeps("notes", &json!(fits)));
    }

    #[test]
    fn the_total_cap_keeps_the_first_keys_in_sorted_order() {
        let mut raw: BTreeMap<String, Value> = (0..40)
            .map(|i| (format!("k{i:02}"), json!("v".repeat(1000))))
            .collect();
        cap_total(&mut raw);
        let total: usize = raw.iter().map(|(k, v)| size(k, v)).sum();
        assert!(total <= RAW_TOTAL_MAX_BYTES);
        assert_eq!(raw.len(), RAW_TOTAL_MAX_BYTES / 1005);
        assert!(raw.contains_key("k00"));
        assert!(!raw.contains_key("k39"));
    }
}
