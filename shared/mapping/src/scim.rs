//! Rendering a [`DirectoryUser`] as a SCIM 2.0 User (RFC 7643 core schema plus the
//! enterprise extension), following JumpCloud's BambooHR attribute table (the seed
//! table):
//!
//! | BambooHR | SCIM |
//! |---|---|
//! | Work Email (required; match key) | `emails` (type work, primary), `userName` source |
//! | First Name | `name.givenName` (or the preferred name: [`ScimOptions::name_source`]) |
//! | Last Name, Middle Name | `name.familyName`, `name.middleName` |
//! | Preferred Name (else First Name) + Last Name | `displayName` |
//! | Employee id | `externalId` |
//! | Status | `active` |
//! | Job Title | `title` |
//! | Employee #, Department, Division | enterprise `employeeNumber`, `department`, `division` and `organization` |
//! | Supervisor EID | enterprise `manager.value` = the manager's SCIM `id` at the target |
//! | Work Phone + Work Ext., Mobile Phone, Home Phone | `phoneNumbers` (work, mobile, home) |
//! | Location Street 1 and 2, City, State, ZIP, Country | `addresses` type work |
//! | Address Line 1 and 2, City, State, Zip Code, Country | `addresses` type home |
//!
//! Attributes without a value are left out. Countries are sent as ISO 3166-1 alpha-2
//! codes ([`CountryCodes`]); an unknown country is left out, the rest of its address
//! kept. A work phone's extension is appended in RFC 3966's form, `;ext=123`: it is the
//! extension syntax of the tel URI that RFC 7643 §4.1.2 names for phone numbers, it
//! cannot be mistaken for part of the number, and phone parsers (libphonenumber, which
//! identity providers use) read it; the number itself is kept as BambooHR holds it,
//! since rewriting arbitrary national formats into a `tel:` URI would need the
//! directory's numbering plan.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use domain::{Address, DirectoryUser, EmailKind, PhoneKind, ScimNameSource, UserState};

use crate::country::CountryCodes;
use crate::error::MappingError;

/// The SCIM core User schema URN.
pub const SCIM_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The SCIM enterprise User extension URN.
pub const SCIM_ENTERPRISE_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Where the SCIM `userName` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsernameSource {
    /// The part of the work email before '@' (JumpCloud's default).
    #[default]
    EmailLocalPart,
    /// The whole work email.
    FullEmail,
    /// BambooHR's "Employee #".
    EmployeeNumber,
}

/// How a SCIM target wants users rendered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimOptions {
    /// Where `userName` comes from.
    pub username: UsernameSource,
    /// Whether a pending user (future hire before its pre-start window) is sent with
    /// `active: true`. Off by default: accounts open with the pre-start window.
    pub pending_active: bool,
    /// Which name `name.givenName` carries (First Name by default).
    pub name_source: ScimNameSource,
    /// Country names to ISO 3166-1 alpha-2, with the target's overrides.
    pub countries: CountryCodes,
}

/// [`to_scim_user_with_manager`] without a manager: `manager` is left out.
pub fn to_scim_user(user: &DirectoryUser, opts: &ScimOptions) -> Result<Value, MappingError> {
    to_scim_user_with_manager(user, opts, None)
}

/// The user as a SCIM 2.0 User (core + enterprise extension) per the seed table above.
///
/// Work Email is required ([`MappingError::MissingWorkEmail`] otherwise, a per-record
/// skip reason). `userName` comes from [`ScimOptions::username`]; `externalId` is the
/// BambooHR employee id; `active` is true for active users (and pending ones when
/// [`ScimOptions::pending_active`]). `manager_scim_id` is the `id` of the manager's
/// account at this target (RFC 7643 §4.3), which only the caller can know: without
/// one, `manager` is left out rather than filled with an id the target cannot resolve.
/// `streetAddress` joins the two street lines with a newline.
pub fn to_scim_user_with_manager(
    user: &DirectoryUser,
    opts: &ScimOptions,
    manager_scim_id: Option<&str>,
) -> Result<Value, MappingError> {
    let work_email = user
        .work_email()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or(MappingError::MissingWorkEmail)?;
    let user_name = match opts.username {
        UsernameSource::EmailLocalPart => email_local_part(work_email)?.to_string(),
        UsernameSource::FullEmail => work_email.to_string(),
        UsernameSource::EmployeeNumber => user
            .employee_number
            .clone()
            .filter(|n| !n.trim().is_empty())
            .ok_or(MappingError::MissingField {
                field: "employeeNumber",
            })?,
    };

    let mut out = Map::new();
    out.insert(
        "schemas".into(),
        json!([SCIM_USER_SCHEMA, SCIM_ENTERPRISE_SCHEMA]),
    );
    out.insert("externalId".into(), json!(user.employee_id.as_str()));
    out.insert("userName".into(), json!(user_name));

    let first = user.first_name.as_deref();
    let preferred = user.preferred_name.as_deref();
    let given = match opts.name_source {
        ScimNameSource::First => first.or(preferred),
        ScimNameSource::Preferred => preferred.or(first),
    };
    let mut name = Map::new();
    put(&mut name, "givenName", given);
    put(&mut name, "familyName", user.last_name.as_deref());
    put(&mut name, "middleName", user.middle_name.as_deref());
    put(
        &mut name,
        "formatted",
        joined(&[
            given,
            user.middle_name.as_deref(),
            user.last_name.as_deref(),
        ])
        .as_deref(),
    );
    if !name.is_empty() {
        out.insert("name".into(), Value::Object(name));
    }
    let display = joined(&[preferred.or(first), user.last_name.as_deref()])
        .or_else(|| user.display_name.clone());
    put(&mut out, "displayName", display.as_deref());
    put(&mut out, "title", user.job_title.as_deref());
    let active = match user.state {
        UserState::Active => true,
        UserState::Pending => opts.pending_active,
        UserState::Inactive | UserState::Deleted => false,
    };
    out.insert("active".into(), json!(active));

    let mut emails = vec![json!({"value": work_email, "type": "work", "primary": true})];
    emails.extend(
        user.emails
            .iter()
            .filter(|e| e.kind == EmailKind::Home)
            .map(|e| json!({"value": e.value, "type": "home", "primary": false})),
    );
    out.insert("emails".into(), Value::Array(emails));

    let phones: Vec<Value> = [PhoneKind::Work, PhoneKind::Mobile, PhoneKind::Home]
        .into_iter()
        .filter_map(|kind| user.phones.iter().find(|p| p.kind == kind))
        .map(|p| {
            let value = phone_value(&p.value, p.extension.as_deref());
            json!({"value": value, "type": phone_type(p.kind)})
        })
        .collect();
    if !phones.is_empty() {
        out.insert("phoneNumbers".into(), Value::Array(phones));
    }

    let addresses: Vec<Value> = [("work", &user.work_address), ("home", &user.home_address)]
        .into_iter()
        .filter_map(|(kind, a)| {
            a.as_ref()
                .and_then(|a| scim_address(kind, a, &opts.countries))
        })
        .collect();
    if !addresses.is_empty() {
        out.insert("addresses".into(), Value::Array(addresses));
    }

    let mut enterprise = Map::new();
    put(
        &mut enterprise,
        "employeeNumber",
        user.employee_number.as_deref(),
    );
    put(&mut enterprise, "department", user.department.as_deref());
    put(&mut enterprise, "division", user.division.as_deref());
    put(&mut enterprise, "organization", user.division.as_deref());
    if let Some(manager) = manager_scim_id.filter(|m| !m.is_empty()) {
        enterprise.insert("manager".into(), json!({"value": manager}));
    }
    if !enterprise.is_empty() {
        out.insert(SCIM_ENTERPRISE_SCHEMA.into(), Value::Object(enterprise));
    }
    Ok(Value::Object(out))
}

/// The phone number with its extension in RFC 3966's `;ext=` form (see the module
/// documentation for why).
pub fn phone_value(number: &str, extension: Option<&str>) -> String {
    match extension.map(str::trim).filter(|e| !e.is_empty()) {
        Some(ext) => format!("{};ext={ext}", number.trim()),
        None => number.trim().to_string(),
    }
}

/// The part of an email before its last '@'; an address without one (or with nothing
/// before it) cannot give a username.
pub(crate) fn email_local_part(email: &str) -> Result<&str, MappingError> {
    match email.rsplit_once('@') {
        Some((local, _)) if !local.trim().is_empty() => Ok(local.trim()),
        _ => Err(MappingError::invalid(
            "workEmail",
            "has no part before '@' to use as the username",
        )),
    }
}

fn phone_type(kind: PhoneKind) -> &'static str {
    match kind {
        PhoneKind::Work => "work",
        PhoneKind::Mobile => "mobile",
        PhoneKind::Home => "home",
    }
}

/// The SCIM address, or none when nothing but an unknown country is left.
fn scim_address(kind: &str, a: &Address, countries: &CountryCodes) -> Option<Value> {
    let mut out = Map::new();
    let street = [a.line1.as_deref(), a.line2.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    put(
        &mut out,
        "streetAddress",
        Some(street.as_str()).filter(|s| !s.is_empty()),
    );
    put(&mut out, "locality", a.city.as_deref());
    put(&mut out, "region", a.region.as_deref());
    put(&mut out, "postalCode", a.postal_code.as_deref());
    put(
        &mut out,
        "country",
        a.country.as_deref().and_then(|c| countries.alpha2(c)),
    );
    if out.is_empty() {
        return None;
    }
    out.insert("type".into(), json!(kind));
    Some(Value::Object(out))
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        map.insert(key.to_string(), json!(v));
    }
}

fn joined(parts: &[Option<&str>]) -> Option<String> {
    let present: Vec<&str> = parts.iter().flatten().copied().collect();
    (!present.is_empty()).then(|| present.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, Email, EmployeeId, Phone};

    fn user() -> DirectoryUser {
        let mut u = DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("42").unwrap(),
            UserState::Active,
        );
        u.first_name = Some("Robert".into());
        u.preferred_name = Some("Bob".into());
        u.middle_name = Some("J".into());
        u.last_name = Some("Smith".into());
        u.employee_number = Some("E-100".into());
        u.job_title = Some("Analyst".into());
        u.department = Some("Finance".into());
        u.division = Some("EMEA".into());
        u.manager_employee_id = Some(EmployeeId::parse("7").unwrap());
        u.emails = vec![
            Email {
                value: "Bob.Smith@Acme.test".into(),
                kind: EmailKind::Work,
                primary: true,
            },
            Email {
                value: "bob@home.test".into(),
                kind: EmailKind::Home,
                primary: false,
            },
        ];
        u.phones = vec![
            Phone {
                value: "+44 20 0000".into(),
                kind: PhoneKind::Mobile,
                extension: None,
            },
            Phone {
                value: "+44 20 0001".into(),
                kind: PhoneKind::Work,
                extension: None,
            },
        ];
        u.home_address = Some(Address {
            line1: Some("1 High St".into()),
            line2: Some("Flat 2".into()),
            city: Some("Leeds".into()),
            postal_code: Some("LS1".into()),
            country: Some("United Kingdom".into()),
            ..Address::default()
        });
        u
    }

    #[test]
    fn user_name_defaults_to_the_work_email_local_part() {
        let v = to_scim_user(&user(), &ScimOptions::default()).unwrap();
        assert_eq!(v["userName"], "Bob.Smith");
        assert_eq!(v["externalId"], "42");
        assert_eq!(v["schemas"][0], SCIM_USER_SCHEMA);
        assert_eq!(v["schemas"][1], SCIM_ENTERPRISE_SCHEMA);
    }

    #[test]
    fn user_name_can_be_the_full_email_or_the_employee_number() {
        let full = ScimOptions {
            username: UsernameSource::FullEmail,
            ..ScimOptions::default()
        };
        assert_eq!(
            to_scim_user(&user(), &full).unwrap()["userName"],
            "Bob.Smith@Acme.test"
        );
        let number = ScimOptions {
            username: UsernameSource::EmployeeNumber,
            ..ScimOptions::default()
        };
        assert_eq!(to_scim_user(&user(), &number).unwrap()["userName"], "E-100");
        let mut u = user();
        u.employee_number = None;
        assert_eq!(
            to_scim_user(&u, &number).unwrap_err(),
            MappingError::MissingField {
                field: "employeeNumber"
            }
        );
    }

    #[test]
    fn a_user_without_a_work_email_is_skipped_with_missing_work_email() {
        let mut u = user();
        u.emails.retain(|e| e.kind == EmailKind::Home);
        assert_eq!(
            to_scim_user(&u, &ScimOptions::default()).unwrap_err(),
            MappingError::MissingWorkEmail
        );
    }

    #[test]
    fn a_work_email_without_a_local_part_gives_no_username() {
        let mut u = user();
        u.emails[0].value = "@acme.test".into();
        let err = to_scim_user(&u, &ScimOptions::default()).unwrap_err();
        assert!(!err.to_string().contains("acme.test"));
    }

    #[test]
    fn given_name_is_the_first_name_and_display_name_the_preferred_name_and_last_name() {
        let v = to_scim_user(&user(), &ScimOptions::default()).unwrap();
        assert_eq!(v["displayName"], "Bob Smith");
        assert_eq!(v["name"]["givenName"], "Robert");
        assert_eq!(v["name"]["familyName"], "Smith");
        assert_eq!(v["name"]["middleName"], "J");
        assert_eq!(v["name"]["formatted"], "Robert J Smith");
        let mut u = user();
        u.preferred_name = None;
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        assert_eq!(v["displayName"], "Robert Smith");
    }

    #[test]
    fn the_preferred_name_source_puts_the_preferred_name_in_given_name() {
        let opts = ScimOptions {
            name_source: ScimNameSource::Preferred,
            ..ScimOptions::default()
        };
        let v = to_scim_user(&user(), &opts).unwrap();
        assert_eq!(v["name"]["givenName"], "Bob");
        assert_eq!(v["displayName"], "Bob Smith");
        let mut u = user();
        u.preferred_name = None;
        assert_eq!(
            to_scim_user(&u, &opts).unwrap()["name"]["givenName"],
            "Robert"
        );
    }

    #[test]
    fn the_enterprise_extension_carries_number_department_division_and_manager() {
        let v =
            to_scim_user_with_manager(&user(), &ScimOptions::default(), Some("2819c223")).unwrap();
        let e = &v[SCIM_ENTERPRISE_SCHEMA];
        assert_eq!(e["employeeNumber"], "E-100");
        assert_eq!(e["department"], "Finance");
        assert_eq!(e["division"], "EMEA");
        assert_eq!(e["organization"], "EMEA");
        assert_eq!(e["manager"], json!({"value": "2819c223"}));
        assert_eq!(v["title"], "Analyst");
    }

    #[test]
    fn an_unresolved_manager_is_left_out_rather_than_sent_as_an_employee_id() {
        let v = to_scim_user(&user(), &ScimOptions::default()).unwrap();
        assert!(v[SCIM_ENTERPRISE_SCHEMA].get("manager").is_none(), "{v}");
    }

    #[test]
    fn a_work_phone_extension_is_appended_in_rfc_3966_form() {
        let mut u = user();
        u.phones[1].extension = Some("123".into());
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        assert_eq!(
            v["phoneNumbers"][0],
            json!({"value": "+44 20 0001;ext=123", "type": "work"})
        );
        assert_eq!(phone_value("+1 555 0100", Some(" ")), "+1 555 0100");
    }

    #[test]
    fn the_work_address_is_rendered_with_an_iso_country_before_the_home_address() {
        let mut u = user();
        u.work_address = Some(Address {
            line1: Some("335 S 560 W".into()),
            city: Some("Lindon".into()),
            region: Some("UT".into()),
            postal_code: Some("84042".into()),
            country: Some("United States".into()),
            ..Address::default()
        });
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        assert_eq!(
            v["addresses"][0],
            json!({"type": "work", "streetAddress": "335 S 560 W", "locality": "Lindon",
                   "region": "UT", "postalCode": "84042", "country": "US"})
        );
        assert_eq!(v["addresses"][1]["type"], "home");
        assert_eq!(v["addresses"][1]["country"], "GB");
    }

    #[test]
    fn an_unknown_country_is_left_out_and_the_rest_of_the_address_kept() {
        let mut u = user();
        u.home_address.as_mut().unwrap().country = Some("Atlantis".into());
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        assert!(v["addresses"][0].get("country").is_none());
        assert_eq!(v["addresses"][0]["locality"], "Leeds");
        u.home_address = Some(Address {
            country: Some("Atlantis".into()),
            ..Address::default()
        });
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        assert!(v.get("addresses").is_none(), "{v}");
    }

    #[test]
    fn a_country_override_maps_a_name_the_iso_table_lacks() {
        let mut u = user();
        u.home_address.as_mut().unwrap().country = Some("UK".into());
        let opts = ScimOptions {
            countries: CountryCodes::with_overrides([("UK", "GB")]),
            ..ScimOptions::default()
        };
        let v = to_scim_user(&u, &opts).unwrap();
        assert_eq!(v["addresses"][0]["country"], "GB");
    }

    #[test]
    fn emails_phones_and_addresses_are_typed() {
        let v = to_scim_user(&user(), &ScimOptions::default()).unwrap();
        assert_eq!(
            v["emails"],
            json!([
                {"value": "Bob.Smith@Acme.test", "type": "work", "primary": true},
                {"value": "bob@home.test", "type": "home", "primary": false},
            ])
        );
        assert_eq!(
            v["phoneNumbers"],
            json!([
                {"value": "+44 20 0001", "type": "work"},
                {"value": "+44 20 0000", "type": "mobile"},
            ])
        );
        assert_eq!(
            v["addresses"],
            json!([{
                "type": "home", "streetAddress": "1 High St\nFlat 2", "locality": "Leeds",
                "postalCode": "LS1", "country": "GB",
            }])
        );
    }

    #[test]
    fn inactive_and_deleted_users_are_not_active_and_pending_is_configurable() {
        let mut u = user();
        assert_eq!(
            to_scim_user(&u, &ScimOptions::default()).unwrap()["active"],
            true
        );
        u.state = UserState::Inactive;
        assert_eq!(
            to_scim_user(&u, &ScimOptions::default()).unwrap()["active"],
            false
        );
        u.state = UserState::Deleted;
        assert_eq!(
            to_scim_user(&u, &ScimOptions::default()).unwrap()["active"],
            false
        );
        u.state = UserState::Pending;
        assert_eq!(
            to_scim_user(&u, &ScimOptions::default()).unwrap()["active"],
            false
        );
        let early = ScimOptions {
            pending_active: true,
            ..ScimOptions::default()
        };
        assert_eq!(to_scim_user(&u, &early).unwrap()["active"], true);
    }

    #[test]
    fn absent_attributes_are_left_out_rather_than_sent_as_null() {
        let mut u = DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("9").unwrap(),
            UserState::Active,
        );
        u.emails = vec![Email {
            value: "x@acme.test".into(),
            kind: EmailKind::Work,
            primary: true,
        }];
        let v = to_scim_user(&u, &ScimOptions::default()).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["active", "emails", "externalId", "schemas", "userName"]
        );
    }
}
