//! Merging an [`EmployeeRecord`] onto the stored [`DirectoryUser`].
//!
//! A record may be partial (a webhook carries only the fields the admin chose), so only
//! what it carries changes: an absent or restricted field keeps its stored value, a blank
//! one clears it. Derived parts (display name, primary email, state, fingerprint) are then
//! recomputed from the merged user.

use time::{Date, OffsetDateTime};

use domain::{
    Address, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, Phone, PhoneKind, UserState,
};

use crate::field::{Field, FieldValue};
use crate::record::{parse_date, parse_timestamp, EmployeeRecord};
use crate::state::derive_state;

/// What [`apply`] needs besides the record: where the user lives and what day it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyContext {
    /// The directory the user belongs to (used for a new user).
    pub directory_id: DirectoryId,
    /// Today in the directory's time zone, for date-driven states.
    pub today: Date,
    /// Days before the hire date a pending user becomes active.
    pub pre_start_days: u32,
    /// When BambooHR changed the employee, when the caller knows (webhook timestamp);
    /// otherwise the record's `lastChanged`, otherwise the stored one.
    pub source_timestamp: Option<OffsetDateTime>,
    /// Fields groups are derived from (`department`, a custom attribute name, ...).
    pub group_sources: Vec<String>,
}

/// Applies a record on top of the stored user (None: a new user). Fields absent from the record or Restricted keep the stored value; Empty clears it.
/// Recomputes display name (preferred name else first name, then last name, unless BambooHR sent a display name), primary email (work primary, else home), lifecycle state (see derive_state) and the fingerprint (DirectoryUser::refresh_fingerprint). Leaves `version` as the stored one (0 for new); the caller bumps it. raw_attributes are merged (new keys override). group_ids are derived from the group sources.
///
/// A stored user of another employee is never merged into: the record then starts a new
/// user. A `deleted` user that BambooHR sends again gets its state derived afresh. A value
/// that does not parse (only possible in a record built by hand, since
/// [`crate::record_from_fields`] checks them) keeps the stored value.
pub fn apply(
    existing: Option<&DirectoryUser>,
    record: &EmployeeRecord,
    ctx: &ApplyContext,
) -> DirectoryUser {
    let mut user = match existing {
        Some(stored) if stored.employee_id == record.employee_id => stored.clone(),
        _ => DirectoryUser::new(
            ctx.directory_id.clone(),
            record.employee_id.clone(),
            UserState::Active,
        ),
    };
    let stored_display_is_bamboohrs =
        user.display_name.is_some() && user.display_name != computed_display_name(&user);
    let get = |field: Field| record.fields.get(&field);

    set(&mut user.employee_number, get(Field::EmployeeNumber));
    set(&mut user.first_name, get(Field::FirstName));
    set(&mut user.middle_name, get(Field::MiddleName));
    set(&mut user.last_name, get(Field::LastName));
    set(&mut user.preferred_name, get(Field::PreferredName));
    set(&mut user.username, get(Field::Username));
    set(&mut user.job_title, get(Field::JobTitle));
    set(&mut user.department, get(Field::Department));
    set(&mut user.division, get(Field::Division));
    set(&mut user.location, get(Field::Location));
    set(&mut user.employment_status, get(Field::Status));
    set_parsed(
        &mut user.manager_employee_id,
        get(Field::ManagerEmployeeId),
        |s| EmployeeId::parse(s).ok(),
    );
    set_parsed(&mut user.hire_date, get(Field::HireDate), parse_date);
    set_parsed(
        &mut user.termination_date,
        get(Field::TerminationDate),
        parse_date,
    );

    user.display_name = match get(Field::DisplayName) {
        Some(FieldValue::Value(sent)) => Some(sent.clone()),
        Some(FieldValue::Empty) => computed_display_name(&user),
        None | Some(FieldValue::Restricted) if stored_display_is_bamboohrs => user.display_name,
        None | Some(FieldValue::Restricted) => computed_display_name(&user),
    };

    apply_emails(&mut user, record);
    apply_phones(&mut user, record);
    user.home_address = merged_address(
        user.home_address.take(),
        record,
        [
            Field::HomeAddressLine1,
            Field::HomeAddressLine2,
            Field::HomeCity,
            Field::HomeRegion,
            Field::HomePostalCode,
            Field::HomeCountry,
        ],
    );
    user.work_address = merged_address(
        user.work_address.take(),
        record,
        [
            Field::WorkAddressLine1,
            Field::WorkAddressLine2,
            Field::WorkCity,
            Field::WorkRegion,
            Field::WorkPostalCode,
            Field::WorkCountry,
        ],
    );

    for (name, value) in &record.custom {
        match value {
            FieldValue::Value(v) => {
                user.custom_attributes
                    .insert(name.clone(), serde_json::Value::String(v.clone()));
            }
            FieldValue::Empty => {
                user.custom_attributes.remove(name);
            }
            FieldValue::Restricted => {}
        }
    }
    // Stored raw keys the directory no longer keeps go (kept before an allowlist
    // existed, or since taken off it); the record's own were judged when it was read.
    user.raw_attributes
        .retain(|k, v| record.raw_allowlist.keeps(k, v));
    for (key, value) in &record.raw {
        user.raw_attributes.insert(key.clone(), value.clone());
    }
    crate::record::cap_total(&mut user.raw_attributes);

    let last_changed = get(Field::LastChanged)
        .and_then(FieldValue::as_value)
        .and_then(parse_timestamp);
    user.source_timestamp = ctx
        .source_timestamp
        .or(last_changed)
        .or(user.source_timestamp);

    user.state = derive_state(
        user.employment_status.as_deref(),
        user.hire_date,
        user.termination_date,
        ctx.today,
        ctx.pre_start_days,
    );
    user.group_ids = crate::groups::user_groups(&user, &ctx.group_sources)
        .into_iter()
        .map(|g| g.id)
        .collect();
    user.refresh_fingerprint();
    user
}

/// Preferred name (else first name), then last name; none when both are missing.
pub(crate) fn computed_display_name(user: &DirectoryUser) -> Option<String> {
    let given = user
        .preferred_name
        .as_deref()
        .or(user.first_name.as_deref());
    let parts: Vec<&str> = [given, user.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn set(slot: &mut Option<String>, value: Option<&FieldValue>) {
    set_parsed(slot, value, |s| Some(s.to_string()));
}

fn set_parsed<T>(
    slot: &mut Option<T>,
    value: Option<&FieldValue>,
    parse: impl Fn(&str) -> Option<T>,
) {
    match value {
        Some(FieldValue::Value(text)) => {
            if let Some(parsed) = parse(text) {
                *slot = Some(parsed);
            }
        }
        Some(FieldValue::Empty) => *slot = None,
        Some(FieldValue::Restricted) | None => {}
    }
}

fn apply_emails(user: &mut DirectoryUser, record: &EmployeeRecord) {
    let stored = |kind: EmailKind| {
        user.emails
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.value.clone())
    };
    let mut work = stored(EmailKind::Work);
    let mut home = stored(EmailKind::Home);
    set(&mut work, record.fields.get(&Field::WorkEmail));
    set(&mut home, record.fields.get(&Field::HomeEmail));
    let work_present = work.is_some();
    user.emails = [
        work.map(|value| Email {
            value,
            kind: EmailKind::Work,
            primary: true,
        }),
        home.map(|value| Email {
            value,
            kind: EmailKind::Home,
            primary: !work_present,
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
}

fn apply_phones(user: &mut DirectoryUser, record: &EmployeeRecord) {
    let kinds = [
        (PhoneKind::Work, Field::WorkPhone),
        (PhoneKind::Mobile, Field::MobilePhone),
        (PhoneKind::Home, Field::HomePhone),
    ];
    user.phones = kinds
        .into_iter()
        .filter_map(|(kind, field)| {
            let stored = user.phones.iter().find(|p| p.kind == kind);
            let mut value = stored.map(|p| p.value.clone());
            let mut extension = stored.and_then(|p| p.extension.clone());
            set(&mut value, record.fields.get(&field));
            if kind == PhoneKind::Work {
                set(
                    &mut extension,
                    record.fields.get(&Field::WorkPhoneExtension),
                );
            }
            // An extension without a number to dial is not a phone.
            value.map(|value| Phone {
                value,
                kind,
                extension,
            })
        })
        .collect();
}

/// Merges the six address parts; an address with no part left is stored as none.
fn merged_address(
    stored: Option<Address>,
    record: &EmployeeRecord,
    [line1, line2, city, region, postal_code, country]: [Field; 6],
) -> Option<Address> {
    let mut address = stored.unwrap_or_default();
    let get = |field: Field| record.fields.get(&field);
    set(&mut address.line1, get(line1));
    set(&mut address.line2, get(line2));
    set(&mut address.city, get(city));
    set(&mut address.region, get(region));
    set(&mut address.postal_code, get(postal_code));
    set(&mut address.country, get(country));
    (!address.is_empty()).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_from_fields, MappingConfig};
    use serde_json::{json, Value};
    use time::macros::date;

    fn ctx() -> ApplyContext {
        ApplyContext {
            directory_id: DirectoryId::parse("acme").unwrap(),
            today: date!(2025 - 06 - 15),
            pre_start_days: 7,
            source_timestamp: None,
            group_sources: Vec::new(),
        }
    }

    fn record(v: Value) -> EmployeeRecord {
        record_with("42", v, &[])
    }

    fn record_with(id: &str, v: Value, restricted: &[&str]) -> EmployeeRecord {
        let restricted: Vec<String> = restricted.iter().map(|s| s.to_string()).collect();
        record_from_fields(
            id,
            v.as_object().unwrap(),
            &restricted,
            &MappingConfig::default(),
        )
        .unwrap()
    }

    fn ada() -> DirectoryUser {
        apply(
            None,
            &record(json!({
                "firstName": "Ada", "lastName": "Lovelace", "preferredName": "Addie",
                "workEmail": "ada@acme.test", "homeEmail": "ada@home.test",
                "workPhone": "+1 555 0100", "mobilePhone": "+1 555 0101",
                "jobTitle": "Engineer", "department": "R&D", "status": "Active",
                "hireDate": "2020-01-06", "address1": "12 St James's Sq", "city": "London",
                "country": "United Kingdom", "supervisorEId": "7",
            })),
            &ctx(),
        )
    }

    #[test]
    fn a_new_user_gets_identity_derived_fields_and_version_zero() {
        let u = ada();
        assert_eq!(u.employee_id.as_str(), "42");
        assert_eq!(u.version, 0);
        assert_eq!(u.display_name.as_deref(), Some("Addie Lovelace"));
        assert_eq!(u.primary_email(), Some("ada@acme.test"));
        assert_eq!(u.state, UserState::Active);
        assert_eq!(u.manager_employee_id.as_ref().unwrap().as_str(), "7");
        assert_eq!(
            u.home_address.as_ref().unwrap().city.as_deref(),
            Some("London")
        );
        assert_eq!(u.work_address, None);
        assert_eq!(u.fingerprint, u.compute_fingerprint());
        assert_ne!(u.fingerprint, domain::Fingerprint::EMPTY);
    }

    #[test]
    fn the_work_extension_is_kept_with_the_work_phone() {
        let u = apply(
            None,
            &record(
                json!({"workEmail": "ada@acme.test", "Work Phone": "+1 555 0100",
                           "Work Ext.": "123", "mobilePhone": "+1 555 0101"}),
            ),
            &ctx(),
        );
        assert_eq!(u.phones[0].kind, PhoneKind::Work);
        assert_eq!(u.phones[0].extension.as_deref(), Some("123"));
        assert_eq!(u.phones[1].extension, None);
        let cleared = apply(Some(&u), &record(json!({"workPhoneExtension": ""})), &ctx());
        assert_eq!(cleared.phones[0].value, "+1 555 0100");
        assert_eq!(cleared.phones[0].extension, None);
    }

    #[test]
    fn the_location_address_fields_become_the_work_address() {
        let u = apply(
            None,
            &record(
                json!({"Location Street 1": "335 S 560 W", "Location Street 2": "Suite 100",
                           "Location City": "Lindon", "Location State": "UT",
                           "Location ZIP": "84042", "Location Country": "United States"}),
            ),
            &ctx(),
        );
        let work = u.work_address.unwrap();
        assert_eq!(work.line1.as_deref(), Some("335 S 560 W"));
        assert_eq!(work.line2.as_deref(), Some("Suite 100"));
        assert_eq!(work.city.as_deref(), Some("Lindon"));
        assert_eq!(work.region.as_deref(), Some("UT"));
        assert_eq!(work.postal_code.as_deref(), Some("84042"));
        assert_eq!(work.country.as_deref(), Some("United States"));
        assert_eq!(u.home_address, None);
    }

    #[test]
    fn an_ssn_or_pay_rate_sent_by_a_webhook_is_never_kept_and_stored_ones_go_without_a_change() {
        let mut before = ada();
        // Stored before the allowlist existed.
        before
            .raw_attributes
            .insert("SSN".into(), json!("123-45-6789"));
        before
            .raw_attributes
            .insert("Pay Rate".into(), json!("100000.00 USD"));
        let after = apply(
            Some(&before),
            &record(json!({"Work Email": "ada@acme.test", "SSN": "123-45-6789",
                           "payRate": "100000.00 USD", "Shirt Size": "M"})),
            &ctx(),
        );
        for k in ["SSN", "Pay Rate", "payRate", "Shirt Size"] {
            assert!(!after.raw_attributes.contains_key(k), "{k}");
        }
        assert_eq!(after.raw_attributes["Work Email"], json!("ada@acme.test"));
        // What is stored changed, the employee did not: same fingerprint, no event.
        assert_eq!(after.fingerprint, before.fingerprint);
    }

    #[test]
    fn a_partial_record_updates_only_its_fields() {
        let mut before = ada();
        before.version = 3;
        let after = apply(
            Some(&before),
            &record(json!({"Job Title": "Staff Engineer"})),
            &ctx(),
        );
        assert_eq!(after.job_title.as_deref(), Some("Staff Engineer"));
        let mut expected = before.clone();
        expected.job_title = Some("Staff Engineer".into());
        expected
            .raw_attributes
            .insert("Job Title".into(), json!("Staff Engineer"));
        expected.refresh_fingerprint();
        assert_eq!(after, expected);
        assert_eq!(after.version, 3);
        assert_ne!(after.fingerprint, before.fingerprint);
    }

    #[test]
    fn restricted_never_clears_but_empty_does() {
        let before = ada();
        let after = apply(
            Some(&before),
            &record_with(
                "42",
                json!({"workEmail": null, "workPhone": null, "homeEmail": ""}),
                &["workEmail"],
            ),
            &ctx(),
        );
        assert_eq!(after.work_email(), Some("ada@acme.test"));
        assert!(after.emails.iter().all(|e| e.kind != EmailKind::Home));
        assert!(after.phones.iter().all(|p| p.kind != PhoneKind::Work));
        assert!(after.phones.iter().any(|p| p.kind == PhoneKind::Mobile));
    }

    #[test]
    fn home_email_becomes_primary_when_the_work_email_is_cleared() {
        let after = apply(Some(&ada()), &record(json!({"workEmail": ""})), &ctx());
        assert_eq!(after.primary_email(), Some("ada@home.test"));
        assert_eq!(after.emails.len(), 1);
        assert!(after.emails[0].primary);
    }

    #[test]
    fn clearing_every_address_part_stores_no_address() {
        let after = apply(
            Some(&ada()),
            &record(json!({"address1": null, "city": "", "country": null})),
            &ctx(),
        );
        assert_eq!(after.home_address, None);
    }

    #[test]
    fn a_display_name_sent_by_bamboohr_wins_and_survives_partial_updates() {
        let u = apply(
            Some(&ada()),
            &record(json!({"displayName": "Countess Ada"})),
            &ctx(),
        );
        assert_eq!(u.display_name.as_deref(), Some("Countess Ada"));
        let u = apply(Some(&u), &record(json!({"lastName": "King"})), &ctx());
        assert_eq!(u.display_name.as_deref(), Some("Countess Ada"));
        let u = apply(Some(&u), &record(json!({"displayName": ""})), &ctx());
        assert_eq!(u.display_name.as_deref(), Some("Addie King"));
    }

    #[test]
    fn a_computed_display_name_follows_name_changes() {
        let u = apply(
            Some(&ada()),
            &record(json!({"preferredName": null})),
            &ctx(),
        );
        assert_eq!(u.display_name.as_deref(), Some("Ada Lovelace"));
    }

    #[test]
    fn custom_attributes_follow_the_same_clear_and_keep_rules() {
        let cfg = MappingConfig {
            custom_field_map: [("customLms".to_string(), "lms".to_string())].into(),
            ..MappingConfig::default()
        };
        let rec = |v: Value, restricted: &[String]| {
            record_from_fields("42", v.as_object().unwrap(), restricted, &cfg).unwrap()
        };
        let u = apply(None, &rec(json!({"customLms": "Yes"}), &[]), &ctx());
        assert_eq!(u.custom_attributes["lms"], json!("Yes"));
        let u = apply(
            Some(&u),
            &rec(json!({"customLms": null}), &["customLms".into()]),
            &ctx(),
        );
        assert_eq!(u.custom_attributes["lms"], json!("Yes"));
        let u = apply(Some(&u), &rec(json!({"customLms": null}), &[]), &ctx());
        assert!(!u.custom_attributes.contains_key("lms"));
    }

    #[test]
    fn state_is_rederived_from_the_merged_status_and_dates() {
        let u = apply(
            Some(&ada()),
            &record(json!({"terminationDate": "2025-06-01"})),
            &ctx(),
        );
        assert_eq!(u.state, UserState::Inactive);
        let u = apply(
            Some(&u),
            &record(json!({"hireDate": "2025-06-10", "status": "Active"})),
            &ctx(),
        );
        assert_eq!(u.state, UserState::Active, "a rehire is active again");
    }

    #[test]
    fn a_deleted_user_sent_again_comes_back() {
        let mut gone = ada();
        gone.state = UserState::Deleted;
        let u = apply(Some(&gone), &record(json!({"firstName": "Ada"})), &ctx());
        assert_eq!(u.state, UserState::Active);
    }

    #[test]
    fn a_stored_user_of_another_employee_is_never_merged_into() {
        let other = ada();
        let u = apply(
            Some(&other),
            &record_with("43", json!({"lastName": "Byron"}), &[]),
            &ctx(),
        );
        assert_eq!(u.employee_id.as_str(), "43");
        assert_eq!(u.first_name, None);
    }

    #[test]
    fn the_source_timestamp_prefers_the_callers_then_last_changed() {
        let r = record(json!({"lastChanged": "2025-06-01T08:00:00Z"}));
        let u = apply(None, &r, &ctx());
        assert_eq!(
            u.source_timestamp,
            Some(time::macros::datetime!(2025-06-01 08:00 UTC))
        );
        let mut c = ctx();
        c.source_timestamp = Some(time::macros::datetime!(2025-06-02 09:00 UTC));
        assert_eq!(apply(None, &r, &c).source_timestamp, c.source_timestamp);
    }
}
