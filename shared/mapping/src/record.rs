//! Parsing a JSON object of BambooHR fields, in any vocabulary, into an [`EmployeeRecord`].
//!
//! A record holds only what BambooHR sent, already parsed (dates, timestamps and manager
//! ids are checked here, once), and says for every field whether it carried a value, was
//! blank (clears) or was withheld by permissions (never clears).
//!
//! It also holds the data minimisation of raw attributes ([`RawAllowlist`]): which of
//! the fields BambooHR sent are kept, built from the same field resolution.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

use domain::EmployeeId;

use crate::error::MappingError;
use crate::field::{builtin, normalize_key, Field, FieldKind, FieldValue, Known};

/// How one directory's BambooHR fields map beyond the built-in vocabularies.
#[derive(Debug, Clone, Default)]
pub struct MappingConfig {
    /// BambooHR field key (any vocabulary, incl. custom fields like "customLitmosAccess" or "Litmos Access") -> custom attribute name.
    pub custom_field_map: BTreeMap<String, String>,
    /// Admin-chosen webhook alias -> a canonical key of any vocabulary (e.g. "mail" -> "workEmail").
    pub aliases: BTreeMap<String, String>,
    /// BambooHR fields kept in the raw attributes besides the mapped ones and the
    /// custom-field map's keys (see [`crate::raw`]).
    pub raw_allowlist: Vec<String>,
}

impl MappingConfig {
    /// The field a key names under this configuration: an admin alias first, then the
    /// built-in vocabularies (case, whitespace and a trailing ':' ignored).
    pub fn field_for(&self, key: &str) -> Option<Field> {
        match Resolver::new(self).identity(key) {
            Identity::Field(f) => Some(f),
            Identity::EmployeeId | Identity::Other(_) => None,
        }
    }
}

/// A parsed employee: only the fields BambooHR actually sent (a partial webhook payload is a partial record).
///
/// `Debug` shows field names and the kind of each value, never HR values.
#[derive(Clone, PartialEq)]
pub struct EmployeeRecord {
    /// BambooHR's immutable employee id.
    pub employee_id: EmployeeId,
    /// The canonical fields the payload carried.
    pub fields: BTreeMap<Field, FieldValue>,
    /// Custom attribute name -> value, for keys named in the custom-field map.
    pub custom: BTreeMap<String, FieldValue>,
    /// The keys kept as sent (restricted ones and those the directory's raw allowlist
    /// does not keep omitted, see [`crate::raw`]), values untouched.
    pub raw: BTreeMap<String, Value>,
    /// The raw allowlist the record was read with; [`crate::apply()`] also drops stored
    /// raw keys it does not keep.
    pub raw_allowlist: RawAllowlist,
}

impl EmployeeRecord {
    /// The value the record carries for a field, if it carried the field at all.
    pub fn get(&self, field: Field) -> Option<&FieldValue> {
        self.fields.get(&field)
    }
}

impl fmt::Debug for EmployeeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmployeeRecord")
            .field("employee_id", &self.employee_id)
            .field("fields", &self.fields)
            .field("custom", &self.custom)
            .field("raw_keys", &self.raw.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a key names once aliases are applied: a field, the employee id, or anything else
/// (identified by its normalized key, so custom maps and restricted lists can match it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Identity {
    Field(Field),
    EmployeeId,
    Other(String),
}

fn builtin_identity(key: &str) -> Identity {
    let normalized = normalize_key(key);
    match builtin(&normalized) {
        Some(Known::Field(f)) => Identity::Field(f),
        Some(Known::EmployeeId) => Identity::EmployeeId,
        None => Identity::Other(normalized),
    }
}

/// The directory's aliases and custom-field map, normalized once per record.
pub(crate) struct Resolver {
    aliases: BTreeMap<String, Identity>,
    custom: BTreeMap<Identity, BTreeSet<String>>,
}

impl Resolver {
    pub(crate) fn new(cfg: &MappingConfig) -> Self {
        let aliases: BTreeMap<String, Identity> = cfg
            .aliases
            .iter()
            .map(|(alias, target)| (normalize_key(alias), builtin_identity(target)))
            .collect();
        let mut resolver = Self {
            aliases,
            custom: BTreeMap::new(),
        };
        for (key, name) in &cfg.custom_field_map {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let identity = resolver.identity(key);
            resolver
                .custom
                .entry(identity)
                .or_default()
                .insert(name.to_string());
        }
        resolver
    }

    /// Aliases are one hop: an alias names a key of a built-in vocabulary (or any other
    /// key), never another alias.
    pub(crate) fn identity(&self, key: &str) -> Identity {
        Self::identity_with(&self.aliases, key)
    }

    /// [`Resolver::identity`] with a given alias map.
    pub(crate) fn identity_with(aliases: &BTreeMap<String, Identity>, key: &str) -> Identity {
        match aliases.get(&normalize_key(key)) {
            Some(identity) => identity.clone(),
            None => builtin_identity(key),
        }
    }

    /// The normalized alias map.
    pub(crate) fn aliases(&self) -> &BTreeMap<String, Identity> {
        &self.aliases
    }

    /// What the custom-field map's keys identify.
    pub(crate) fn custom_identities(&self) -> impl Iterator<Item = &Identity> {
        self.custom.keys()
    }
}

/// Maps a JSON object of BambooHR fields in ANY of the three vocabularies to a record.
/// `restricted` is the `_restrictedFields` list (names in the same vocabulary as the keys).
///
/// Keys are read in sorted order; when two keys name the same field, a value beats a
/// restriction, which beats a blank, and the first key wins a tie. A restricted key is
/// [`FieldValue::Restricted`] whatever its value, and is left out of `raw`. An id key
/// (`id`, `employeeId`) that disagrees with `employee_id` is an error: the payload would
/// be written onto the wrong employee.
pub fn record_from_fields(
    employee_id: &str,
    fields: &Map<String, Value>,
    restricted: &[String],
    cfg: &MappingConfig,
) -> Result<EmployeeRecord, MappingError> {
    let employee_id = EmployeeId::parse(employee_id.trim()).map_err(|_| {
        MappingError::invalid(
            "employeeId",
            "is not an employee id (1-32 letters, digits, '-' or '_')",
        )
    })?;
    let resolver = Resolver::new(cfg);
    let restricted: BTreeSet<Identity> = restricted.iter().map(|k| resolver.identity(k)).collect();

    let raw_allowlist = RawAllowlist::new(cfg);
    let mut record = EmployeeRecord {
        employee_id,
        fields: BTreeMap::new(),
        custom: BTreeMap::new(),
        raw: BTreeMap::new(),
        raw_allowlist,
    };
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    for key in keys {
        let value = &fields[key];
        let identity = resolver.identity(key);
        let is_restricted = restricted.contains(&identity);
        if !is_restricted && record.raw_allowlist.keeps(key, value) {
            record.raw.insert(key.clone(), value.clone());
        }
        if let Some(names) = resolver.custom.get(&identity) {
            let custom = if is_restricted {
                FieldValue::Restricted
            } else {
                custom_value(value)
            };
            for name in names {
                merge(&mut record.custom, name.clone(), custom.clone());
            }
        }
        match identity {
            Identity::Field(field) => {
                let parsed = if is_restricted {
                    FieldValue::Restricted
                } else {
                    field_value(field, value)?
                };
                merge(&mut record.fields, field, parsed);
            }
            Identity::EmployeeId if !is_restricted => {
                check_same_employee(&record.employee_id, value)?;
            }
            Identity::EmployeeId | Identity::Other(_) => {}
        }
    }
    Ok(record)
}

fn merge<K: Ord>(map: &mut BTreeMap<K, FieldValue>, key: K, value: FieldValue) {
    match map.get(&key) {
        Some(existing) if existing.rank() >= value.rank() => {}
        _ => {
            map.insert(key, value);
        }
    }
}

fn check_same_employee(expected: &EmployeeId, value: &Value) -> Result<(), MappingError> {
    match scalar_text(value) {
        Ok(None) => Ok(()),
        Ok(Some(text)) if text == expected.as_str() => Ok(()),
        _ => Err(MappingError::invalid(
            "employeeId",
            "differs from the employee being mapped",
        )),
    }
}

/// A scalar JSON value as trimmed text (booleans as "Yes"/"No"): `Ok(None)` when blank
/// (null or only whitespace), an error for arrays and objects.
fn scalar_text(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = s.trim();
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
        Value::Number(n) => Ok(Some(n.to_string())),
        // BambooHR's own text for a checkbox, so a JSON `true` from one surface and
        // "Yes" from another fingerprint the same.
        Value::Bool(true) => Ok(Some("Yes".to_string())),
        Value::Bool(false) => Ok(Some("No".to_string())),
        Value::Array(_) | Value::Object(_) => Err("expected text, a number or a boolean"),
    }
}

fn field_value(field: Field, value: &Value) -> Result<FieldValue, MappingError> {
    let text = scalar_text(value).map_err(|reason| MappingError::invalid(field.key(), reason))?;
    let Some(text) = text else {
        return Ok(FieldValue::Empty);
    };
    let parsed = match field.kind() {
        FieldKind::Text => text,
        FieldKind::Date => {
            if text == "0000-00-00" {
                return Ok(FieldValue::Empty);
            }
            let date = parse_date(&text)
                .ok_or_else(|| MappingError::invalid(field.key(), "is not a YYYY-MM-DD date"))?;
            format_date(date)
        }
        FieldKind::Timestamp => {
            let at = parse_timestamp(&text).ok_or_else(|| {
                MappingError::invalid(field.key(), "is not an RFC 3339 timestamp")
            })?;
            at.format(&Rfc3339)
                .map_err(|_| MappingError::invalid(field.key(), "is out of range"))?
        }
        FieldKind::EmployeeRef => EmployeeId::parse(text.as_str())
            .map_err(|_| {
                MappingError::invalid(
                    field.key(),
                    "is not an employee id (1-32 letters, digits, '-' or '_')",
                )
            })?
            .into(),
    };
    Ok(FieldValue::Value(parsed))
}

/// Custom fields take any JSON: scalars become text, lists become their items joined
/// with ", ", objects their compact JSON.
fn custom_value(value: &Value) -> FieldValue {
    let text = match value {
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|item| match scalar_text(item) {
                    Ok(text) => text,
                    Err(_) => Some(item.to_string()),
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Object(_) => Some(value.to_string()),
        scalar => scalar_text(scalar).unwrap_or_default(),
    };
    text.map_or(FieldValue::Empty, FieldValue::Value)
}

/// Parses a `YYYY-MM-DD` calendar date.
pub fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]")).ok()
}

pub(crate) fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses a BambooHR timestamp: RFC 3339, an offset without a colon (`+0000`), or a
/// plain `YYYY-MM-DD HH:MM:SS` taken as UTC.
pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| {
            OffsetDateTime::parse(
                text,
                format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
                ),
            )
        })
        .or_else(|_| {
            PrimitiveDateTime::parse(
                text,
                format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
            )
            .map(PrimitiveDateTime::assume_utc)
        })
        .ok()
}

/// Whether a checkbox-like value is ticked: "true", "yes", "y", "1", "on" or "checked",
/// in any case (BambooHR sends custom checkboxes as true/false or "Yes"/"No").
pub fn is_truthy(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "y" | "1" | "on" | "checked"
    )
}

// ---------------------------------------------------------------- raw attributes
// Data minimisation of raw attributes: which of the fields BambooHR sent are kept
// under `rawAttributes`, and how large they may be.
//
// BambooHR sends whatever a field-based webhook monitors or a request names, which
// may include a pay rate or an SSN an admin added. Only these are kept:
//
// * fields the mapping uses (any built-in field, in any vocabulary or by an admin
//   alias), and the custom-field map's keys;
// * the directory's allowlist: by default its extra fields and group sources;
//   configured, the fields listed (matched by name ignoring case, spaces and a
//   trailing ':', or as the same built-in field under another vocabulary).
//
// Only scalar values (text, number, true/false, null) are kept, each at most
// [`RAW_VALUE_MAX_BYTES`] bytes of JSON; a user keeps at most [`RAW_TOTAL_MAX_BYTES`]
// bytes of raw attributes (keys and values, JSON), the first keys in sorted order.
// Anything else is dropped before it is stored, so it reaches no target.

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

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    fn map(v: Value) -> EmployeeRecord {
        record_from_fields("42", &obj(v), &[], &MappingConfig::default()).expect("maps")
    }

    fn value(s: &str) -> FieldValue {
        FieldValue::Value(s.to_string())
    }

    #[test]
    fn strings_are_trimmed_and_unicode_is_preserved() {
        let r = map(json!({"firstName": "  Zoë  ", "lastName": "Ōkubo"}));
        assert_eq!(r.get(Field::FirstName), Some(&value("Zoë")));
        assert_eq!(r.get(Field::LastName), Some(&value("Ōkubo")));
    }

    #[test]
    fn numbers_become_text_and_booleans_become_yes_or_no() {
        let r = map(json!({"employeeNumber": 1007, "Status": true, "username": false}));
        assert_eq!(r.get(Field::EmployeeNumber), Some(&value("1007")));
        assert_eq!(r.get(Field::Status), Some(&value("Yes")));
        assert_eq!(r.get(Field::Username), Some(&value("No")));
    }

    #[test]
    fn null_and_blank_values_are_empty_unless_restricted() {
        let r = record_from_fields(
            "42",
            &obj(json!({"workEmail": null, "homeEmail": "  ", "workPhone": null})),
            &["workPhone".to_string()],
            &MappingConfig::default(),
        )
        .unwrap();
        assert_eq!(r.get(Field::WorkEmail), Some(&FieldValue::Empty));
        assert_eq!(r.get(Field::HomeEmail), Some(&FieldValue::Empty));
        assert_eq!(r.get(Field::WorkPhone), Some(&FieldValue::Restricted));
        assert!(!r.raw.contains_key("workPhone"));
        assert!(r.raw.contains_key("workEmail"));
    }

    #[test]
    fn a_restricted_name_in_another_spelling_still_restricts_the_field() {
        let r = record_from_fields(
            "42",
            &obj(json!({"jobTitleName": null})),
            &["jobTitle".to_string()],
            &MappingConfig::default(),
        )
        .unwrap();
        assert_eq!(r.get(Field::JobTitle), Some(&FieldValue::Restricted));
    }

    #[test]
    fn zero_dates_and_blank_dates_are_empty_and_good_dates_parse() {
        let r = map(
            json!({"hireDate": "0000-00-00", "terminationDate": "", "Last Changed": "2024-05-01T10:00:00+0000"}),
        );
        assert_eq!(r.get(Field::HireDate), Some(&FieldValue::Empty));
        assert_eq!(r.get(Field::TerminationDate), Some(&FieldValue::Empty));
        assert_eq!(
            r.get(Field::LastChanged),
            Some(&value("2024-05-01T10:00:00Z"))
        );
        let r = map(json!({"Hire Date": " 2024-02-29 "}));
        assert_eq!(r.get(Field::HireDate), Some(&value("2024-02-29")));
    }

    #[test]
    fn an_unparseable_date_is_an_error_that_names_the_field_but_not_the_value() {
        let err = record_from_fields(
            "42",
            &obj(json!({"hireDate": "31/12/2024"})),
            &[],
            &MappingConfig::default(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            MappingError::InvalidValue {
                field: "hireDate",
                reason: "is not a YYYY-MM-DD date"
            }
        );
        assert!(!err.to_string().contains("31/12"));
    }

    #[test]
    fn a_bad_employee_id_or_manager_id_is_an_error() {
        let cfg = MappingConfig::default();
        assert!(record_from_fields("", &Map::new(), &[], &cfg).is_err());
        assert!(record_from_fields("4 2", &Map::new(), &[], &cfg).is_err());
        let err = record_from_fields("42", &obj(json!({"supervisorEId": "Ada L."})), &[], &cfg)
            .unwrap_err();
        assert!(!err.to_string().contains("Ada"));
        assert!(matches!(
            err,
            MappingError::InvalidValue {
                field: "managerEmployeeId",
                ..
            }
        ));
    }

    #[test]
    fn an_id_key_that_disagrees_with_the_employee_is_refused() {
        let cfg = MappingConfig::default();
        assert!(record_from_fields("42", &obj(json!({"employeeId": 42})), &[], &cfg).is_ok());
        assert!(record_from_fields("42", &obj(json!({"id": "43"})), &[], &cfg).is_err());
    }

    #[test]
    fn a_structured_value_for_a_known_field_is_an_error() {
        let cfg = MappingConfig::default();
        let err = record_from_fields("42", &obj(json!({"department": {"name": "x"}})), &[], &cfg)
            .unwrap_err();
        assert!(matches!(
            err,
            MappingError::InvalidValue {
                field: "department",
                ..
            }
        ));
    }

    #[test]
    fn reporting_to_stays_in_raw_and_never_becomes_the_manager() {
        let cfg = MappingConfig {
            raw_allowlist: vec!["Reporting to".into()],
            ..MappingConfig::default()
        };
        let r = record_from_fields(
            "42",
            &obj(json!({"Reporting to": "Grace Hopper"})),
            &[],
            &cfg,
        )
        .unwrap();
        assert!(r.fields.is_empty());
        assert_eq!(r.raw["Reporting to"], json!("Grace Hopper"));
    }

    #[test]
    fn aliases_map_admin_names_onto_any_vocabulary() {
        let cfg = MappingConfig {
            aliases: BTreeMap::from([
                ("mail".to_string(), "workEmail".to_string()),
                ("Team".to_string(), "jobInformationDepartment".to_string()),
                ("Boss EID".to_string(), "Supervisor EID".to_string()),
            ]),
            ..MappingConfig::default()
        };
        let r = record_from_fields(
            "42",
            &obj(json!({"MAIL": "a@x.io", "team:": "R&D", "boss eid": "7"})),
            &[],
            &cfg,
        )
        .unwrap();
        assert_eq!(r.get(Field::WorkEmail), Some(&value("a@x.io")));
        assert_eq!(r.get(Field::Department), Some(&value("R&D")));
        assert_eq!(r.get(Field::ManagerEmployeeId), Some(&value("7")));
        assert_eq!(cfg.field_for("Mail"), Some(Field::WorkEmail));
    }

    #[test]
    fn custom_fields_are_kept_only_when_mapped_and_match_in_any_spelling() {
        let cfg = MappingConfig {
            custom_field_map: BTreeMap::from([
                ("customLitmosAccess".to_string(), "litmosAccess".to_string()),
                (
                    "Employment Status".to_string(),
                    "employmentType".to_string(),
                ),
                ("Shirt Size".to_string(), "shirt".to_string()),
            ]),
            ..MappingConfig::default()
        };
        let r = record_from_fields(
            "42",
            &obj(json!({
                "CustomLitmosAccess": true,
                "employmentStatus": "Full-Time",
                "shirtSize": ["M", "L"],
                "favouriteColour": "teal",
            })),
            &[],
            &cfg,
        )
        .unwrap();
        assert_eq!(r.custom["litmosAccess"], value("Yes"));
        assert_eq!(r.custom["employmentType"], value("Full-Time"));
        assert_eq!(r.custom["shirt"], value("M, L"));
        assert_eq!(r.custom.len(), 3);
        assert_eq!(r.get(Field::EmploymentStatus), Some(&value("Full-Time")));
        // Not mapped and not on the directory's raw allowlist: not kept.
        assert!(!r.raw.contains_key("favouriteColour"));
        // A list value is kept mapped (custom attribute), never raw.
        assert!(!r.raw.contains_key("shirtSize"));
        assert_eq!(r.raw["CustomLitmosAccess"], json!(true));
    }

    #[test]
    fn when_two_keys_name_one_field_a_value_beats_a_blank() {
        let r = map(json!({"department": "", "departmentName": "Sales"}));
        assert_eq!(r.get(Field::Department), Some(&value("Sales")));
    }

    #[test]
    fn checkbox_values_read_as_ticked_or_not() {
        for yes in ["true", "Yes", " y ", "1", "CHECKED"] {
            assert!(is_truthy(yes), "{yes}");
        }
        for no in ["false", "No", "", "0", "maybe"] {
            assert!(!is_truthy(no), "{no}");
        }
    }

    #[test]
    fn debug_output_of_a_record_shows_keys_but_no_values() {
        let r = map(json!({"firstName": "Ada", "Work Email": "Grace@x.io"}));
        let shown = format!("{r:?}");
        assert!(shown.contains("FirstName"));
        assert!(shown.contains("Work Email"));
        assert!(!shown.contains("Ada"));
        assert!(!shown.contains("Grace"));
    }
}

#[cfg(test)]
mod raw_tests {
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
