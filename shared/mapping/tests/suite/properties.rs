//! Property tests: mapping arbitrary BambooHR payloads never panics, is deterministic,
//! and applying a record is idempotent; restricted fields never change a stored user.

use std::collections::BTreeMap;

use domain::DirectoryId;
use mapping::{
    apply, dataset_fields, employee_endpoint_fields, record_from_fields, to_scim_user,
    to_upsert_body, ApplyContext, Field, MappingConfig, ScimOptions,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use time::macros::date;

const WEBHOOK_NAMES: &[&str] = &[
    "Employee #",
    "First Name",
    "Middle Name",
    "Last Name",
    "Preferred Name",
    "Display Name",
    "Work Email",
    "Home Email",
    "Work Phone",
    "Mobile Phone",
    "Home Phone",
    "Job Title",
    "Department",
    "Division",
    "Location",
    "Reporting to",
    "Supervisor EID",
    "Address Line 1",
    "Address Line 2",
    "City",
    "State",
    "Zip Code",
    "Zipcode",
    "Country",
    "Hire Date",
    "Termination Date",
    "Status",
    "Employment Status",
    "id",
    "employeeId",
    "Employee ID",
    "customLitmosAccess",
    "Litmos Access",
];

fn known_keys() -> Vec<String> {
    let mut keys: Vec<String> = WEBHOOK_NAMES.iter().map(|s| s.to_string()).collect();
    keys.extend(dataset_fields().into_iter().map(String::from));
    keys.extend(employee_endpoint_fields().into_iter().map(String::from));
    keys.extend(Field::ALL.iter().map(|f| f.key().to_string()));
    keys
}

/// Known keys (sometimes with shuffled case and padding) and arbitrary ones.
fn key() -> impl Strategy<Value = String> {
    let known = known_keys();
    prop_oneof![
        4 => proptest::sample::select(known.clone()),
        2 => (proptest::sample::select(known), any::<bool>(), any::<bool>()).prop_map(
            |(k, upper, pad)| {
                let k = if upper { k.to_uppercase() } else { k.to_lowercase() };
                if pad { format!("  {k} :") } else { k }
            }
        ),
        1 => "\\PC{0,12}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0000-00-00".to_string()),
        Just("Active".to_string()),
        Just("Inactive".to_string()),
        Just("a@b.test".to_string()),
        (1990i32..2040, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
        "[0-9]{1,4}",
        "\\PC{0,16}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn fields() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(key(), json_value(), 0..24)
        .prop_map(|m| m.into_iter().collect())
}

/// Mostly scalar, well-formed payloads, so records usually map and apply is exercised.
fn scalar_fields() -> impl Strategy<Value = Map<String, Value>> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u32..10_000).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    proptest::collection::btree_map(key(), scalar, 0..24).prop_map(|m| m.into_iter().collect())
}

fn config() -> impl Strategy<Value = MappingConfig> {
    let known = known_keys();
    (
        proptest::collection::btree_map(key(), "[a-z]{1,8}", 0..4),
        proptest::collection::btree_map("\\PC{1,8}", proptest::sample::select(known), 0..4),
    )
        .prop_map(|(custom_field_map, aliases)| MappingConfig {
            custom_field_map,
            aliases,
            ..MappingConfig::default()
        })
}

fn employee_id() -> impl Strategy<Value = String> {
    prop_oneof![9 => "[0-9]{1,6}", 1 => "\\PC{0,8}"]
}

fn ctx(today_offset: i64, pre_start_days: u32) -> ApplyContext {
    ApplyContext {
        directory_id: DirectoryId::parse("acme").unwrap(),
        today: date!(2025 - 06 - 15) + time::Duration::days(today_offset),
        pre_start_days,
        source_timestamp: None,
        group_sources: Vec::new(),
    }
}

fn restricted_of(m: &Map<String, Value>, picks: &[bool], extra: &[String]) -> Vec<String> {
    m.keys()
        .zip(picks.iter().cycle())
        .filter(|(_, pick)| **pick)
        .map(|(k, _)| k.clone())
        .chain(extra.iter().cloned())
        .collect()
}

proptest! {
    #[test]
    fn mapping_any_json_object_never_panics(
        id in employee_id(),
        payload in fields(),
        picks in proptest::collection::vec(any::<bool>(), 1..8),
        extra in proptest::collection::vec(key(), 0..3),
        cfg in config(),
    ) {
        let restricted = restricted_of(&payload, &picks, &extra);
        match record_from_fields(&id, &payload, &restricted, &cfg) {
            Ok(record) => {
                let user = apply(None, &record, &ctx(0, 7));
                let _ = to_scim_user(&user, &ScimOptions::default());
                let _ = to_upsert_body(&user, &[]);
                let _ = format!("{record:?}");
            }
            Err(e) => {
                prop_assert!(!e.is_retryable());
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn mapping_is_deterministic(
        payload in scalar_fields(),
        picks in proptest::collection::vec(any::<bool>(), 1..8),
        cfg in config(),
        offset in -4000i64..4000,
        window in 0u32..60,
    ) {
        let restricted = restricted_of(&payload, &picks, &[]);
        let first = record_from_fields("42", &payload, &restricted, &cfg);
        let second = record_from_fields("42", &payload, &restricted, &cfg);
        prop_assert_eq!(&first, &second);
        if let Ok(record) = first {
            let a = apply(None, &record, &ctx(offset, window));
            let b = apply(None, &record, &ctx(offset, window));
            prop_assert_eq!(&a.fingerprint, &b.fingerprint);
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn applying_the_same_record_twice_changes_nothing_more(
        before in scalar_fields(),
        payload in scalar_fields(),
        picks in proptest::collection::vec(any::<bool>(), 1..8),
        cfg in config(),
        offset in -4000i64..4000,
        window in 0u32..60,
    ) {
        let c = ctx(offset, window);
        let stored = record_from_fields("42", &before, &[], &cfg)
            .ok()
            .map(|r| apply(None, &r, &c));
        let restricted = restricted_of(&payload, &picks, &[]);
        if let Ok(record) = record_from_fields("42", &payload, &restricted, &cfg) {
            let once = apply(stored.as_ref(), &record, &c);
            let twice = apply(Some(&once), &record, &c);
            prop_assert_eq!(&once.fingerprint, &twice.fingerprint);
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn a_fully_restricted_record_never_changes_the_stored_user(
        before in scalar_fields(),
        payload in scalar_fields(),
        cfg in config(),
    ) {
        let c = ctx(0, 7);
        if let Ok(r) = record_from_fields("42", &before, &[], &cfg) {
            let stored = apply(None, &r, &c);
            let restricted: Vec<String> = payload.keys().cloned().collect();
            let record = record_from_fields("42", &payload, &restricted, &cfg).unwrap();
            prop_assert!(record.raw.is_empty());
            prop_assert_eq!(apply(Some(&stored), &record, &c), stored);
        }
    }

    #[test]
    fn every_vocabulary_spelling_of_a_field_maps_alike(
        value in "[A-Za-z][A-Za-z ]{0,10}",
        index in 0usize..3,
    ) {
        let spellings = [
            ("jobTitleName", "jobInformationJobTitle", "Job Title"),
            ("departmentName", "jobInformationDepartment", "department:"),
            ("address1", "addressLineOne", "ADDRESS LINE 1"),
        ][index];
        let cfg = MappingConfig::default();
        let users: Vec<_> = [spellings.0, spellings.1, spellings.2]
            .into_iter()
            .map(|k| {
                let payload: Map<String, Value> =
                    BTreeMap::from([(k.to_string(), Value::String(value.clone()))])
                        .into_iter()
                        .collect();
                let r = record_from_fields("7", &payload, &[], &cfg).unwrap();
                apply(None, &r, &ctx(0, 7)).fingerprint
            })
            .collect();
        prop_assert_eq!(&users[0], &users[1]);
        prop_assert_eq!(&users[1], &users[2]);
    }
}
