//! Rendering a [`DirectoryUser`] as a Litmos-style JSON upsert body.
//!
//! The body always has the same keys (a missing value is `null`, so a cleared value is
//! cleared at the target too); a target may narrow it to the fields it takes. The work
//! email is required: it is the username and the match key.

use serde_json::{json, Map, Value};

use domain::{DirectoryUser, PhoneKind, UserState};

use crate::error::MappingError;

/// The keys of an upsert body, in the order they are documented.
pub const UPSERT_FIELDS: [&str; 16] = [
    "username",
    "email",
    "firstName",
    "lastName",
    "workPhone",
    "mobilePhone",
    "address1",
    "address2",
    "city",
    "state",
    "zip",
    "country",
    "jobTitle",
    "active",
    "terminated",
    "employeeId",
];

/// Litmos-style upsert body: first/last/work email (as username, required), work and mobile phone, address 1 and 2, city, state, zip, country, job title, active, terminated (bool), restricted to `fields` when non-empty (field names as in this body).
///
/// Keys: `username` and `email` (both the work email), `firstName`, `lastName`,
/// `workPhone`, `mobilePhone`, `address1`, `address2`, `city`, `state`, `zip`, `country`
/// (the home address, else the work address), `jobTitle`, `active` (state is active),
/// `terminated` (the employee was terminated: see [`was_terminated`]) and `employeeId`
/// (BambooHR's). `username`
/// is kept even when `fields` leaves it out, since the target matches on it; names in
/// `fields` match case-insensitively and unknown ones are ignored.
pub fn to_upsert_body(user: &DirectoryUser, fields: &[String]) -> Result<Value, MappingError> {
    let email = user
        .work_email()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(MappingError::MissingWorkEmail)?;
    let phone = |kind: PhoneKind| {
        user.phones
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.value.as_str())
    };
    let address = user.home_address.as_ref().or(user.work_address.as_ref());
    let part = |get: fn(&domain::Address) -> Option<&str>| address.and_then(get);

    let body = json!({
        "username": email,
        "email": email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "workPhone": phone(PhoneKind::Work),
        "mobilePhone": phone(PhoneKind::Mobile),
        "address1": part(|a| a.line1.as_deref()),
        "address2": part(|a| a.line2.as_deref()),
        "city": part(|a| a.city.as_deref()),
        "state": part(|a| a.region.as_deref()),
        "zip": part(|a| a.postal_code.as_deref()),
        "country": part(|a| a.country.as_deref()),
        "jobTitle": user.job_title,
        "active": user.state == UserState::Active,
        "terminated": was_terminated(user),
        "employeeId": user.employee_id.as_str(),
    });
    if fields.is_empty() {
        return Ok(body);
    }
    let Value::Object(all) = body else {
        unreachable!("json! of an object literal is an object")
    };
    let wanted: Map<String, Value> = all
        .into_iter()
        .filter(|(key, _)| {
            key == "username" || fields.iter().any(|f| f.trim().eq_ignore_ascii_case(key))
        })
        .collect();
    Ok(Value::Object(wanted))
}

/// Whether the employee was terminated, as the seed means it: no longer active and
/// BambooHR holds a termination (a termination date, or the employment status
/// "Terminated"). An employee who is merely Inactive (a future hire, a status set by
/// hand) or gone from BambooHR without a termination is inactive, not terminated.
pub fn was_terminated(user: &DirectoryUser) -> bool {
    let left = matches!(user.state, UserState::Inactive | UserState::Deleted);
    let termination = user.termination_date.is_some()
        || user
            .employment_status
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("terminated"));
    left && termination
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Address, DirectoryId, Email, EmailKind, EmployeeId, Phone};

    fn user() -> DirectoryUser {
        let mut u = DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("42").unwrap(),
            UserState::Active,
        );
        u.first_name = Some("Ana".into());
        u.last_name = Some("Silva".into());
        u.job_title = Some("Nurse".into());
        u.emails = vec![Email {
            value: "ana@acme.test".into(),
            kind: EmailKind::Work,
            primary: true,
        }];
        u.phones = vec![Phone {
            value: "555".into(),
            kind: PhoneKind::Mobile,
            extension: None,
        }];
        u.home_address = Some(Address {
            line1: Some("Rua 1".into()),
            city: Some("Porto".into()),
            region: Some("PT-13".into()),
            postal_code: Some("4000".into()),
            country: Some("Portugal".into()),
            ..Address::default()
        });
        u
    }

    #[test]
    fn the_body_has_every_field_with_null_for_missing_values() {
        let v = to_upsert_body(&user(), &[]).unwrap();
        assert_eq!(
            v,
            json!({
                "username": "ana@acme.test", "email": "ana@acme.test",
                "firstName": "Ana", "lastName": "Silva",
                "workPhone": null, "mobilePhone": "555",
                "address1": "Rua 1", "address2": null, "city": "Porto", "state": "PT-13",
                "zip": "4000", "country": "Portugal", "jobTitle": "Nurse",
                "active": true, "terminated": false, "employeeId": "42",
            })
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        let mut documented = UPSERT_FIELDS.to_vec();
        documented.sort_unstable();
        assert_eq!(keys, documented);
    }

    #[test]
    fn a_terminated_user_is_inactive_and_terminated() {
        let mut u = user();
        u.state = UserState::Inactive;
        u.termination_date = Some(time::macros::date!(2025 - 05 - 31));
        let v = to_upsert_body(&u, &[]).unwrap();
        assert_eq!(v["active"], false);
        assert_eq!(v["terminated"], true);
    }

    #[test]
    fn an_inactive_user_without_a_termination_is_inactive_but_not_terminated() {
        let mut u = user();
        u.state = UserState::Inactive;
        u.employment_status = Some("Inactive".into());
        let v = to_upsert_body(&u, &[]).unwrap();
        assert_eq!(v["active"], false);
        assert_eq!(v["terminated"], false);
        u.state = UserState::Deleted;
        let v = to_upsert_body(&u, &[]).unwrap();
        assert_eq!(
            v["terminated"], false,
            "gone from BambooHR is not a termination"
        );
    }

    #[test]
    fn a_terminated_employment_status_counts_as_terminated_without_a_date() {
        let mut u = user();
        u.state = UserState::Inactive;
        u.employment_status = Some("Terminated".into());
        assert!(was_terminated(&u));
        u.state = UserState::Active;
        assert!(!was_terminated(&u), "a rehire is active, not terminated");
    }

    #[test]
    fn a_pending_user_is_neither_active_nor_terminated() {
        let mut u = user();
        u.state = UserState::Pending;
        let v = to_upsert_body(&u, &[]).unwrap();
        assert_eq!(v["active"], false);
        assert_eq!(v["terminated"], false);
    }

    #[test]
    fn the_field_list_narrows_the_body_but_keeps_the_username() {
        let fields = vec![
            "FirstName".to_string(),
            "active".to_string(),
            "nope".to_string(),
        ];
        let v = to_upsert_body(&user(), &fields).unwrap();
        assert_eq!(
            v,
            json!({"username": "ana@acme.test", "firstName": "Ana", "active": true})
        );
    }

    #[test]
    fn a_user_without_a_work_email_is_refused() {
        let mut u = user();
        u.emails.clear();
        assert_eq!(
            to_upsert_body(&u, &[]).unwrap_err(),
            MappingError::MissingWorkEmail
        );
    }
}
