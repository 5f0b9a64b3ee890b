//! Reading a canonical [`Field`] back from a [`DirectoryUser`], for target filters and
//! group sources that name fields rather than struct members.

use domain::{Address, DirectoryUser, EmailKind, PhoneKind};
use time::format_description::well_known::Rfc3339;

use crate::field::{builtin, normalize_key, Field, Known};
use crate::record::format_date;

/// The user's current value of a field as text (dates `YYYY-MM-DD`, the source timestamp
/// RFC 3339), or none. [`Field::EmploymentStatus`], which has no slot of its own, is read
/// from the raw attributes under any of its BambooHR spellings.
pub fn user_field(user: &DirectoryUser, field: Field) -> Option<String> {
    let email = |kind: EmailKind| {
        user.emails
            .iter()
            .find(|e| e.kind == kind)
            .map(|e| e.value.clone())
    };
    let phone = |kind: PhoneKind| {
        user.phones
            .iter()
            .find(|p| p.kind == kind)
            .map(|p| p.value.clone())
    };
    let home = |get: fn(&Address) -> &Option<String>| {
        user.home_address.as_ref().and_then(|a| get(a).clone())
    };
    let work = |get: fn(&Address) -> &Option<String>| {
        user.work_address.as_ref().and_then(|a| get(a).clone())
    };
    match field {
        Field::EmployeeNumber => user.employee_number.clone(),
        Field::FirstName => user.first_name.clone(),
        Field::MiddleName => user.middle_name.clone(),
        Field::LastName => user.last_name.clone(),
        Field::PreferredName => user.preferred_name.clone(),
        Field::DisplayName => user.display_name.clone(),
        Field::WorkEmail => email(EmailKind::Work),
        Field::HomeEmail => email(EmailKind::Home),
        Field::WorkPhone => phone(PhoneKind::Work),
        Field::WorkPhoneExtension => user
            .phones
            .iter()
            .find(|p| p.kind == PhoneKind::Work)
            .and_then(|p| p.extension.clone()),
        Field::MobilePhone => phone(PhoneKind::Mobile),
        Field::HomePhone => phone(PhoneKind::Home),
        Field::JobTitle => user.job_title.clone(),
        Field::Department => user.department.clone(),
        Field::Division => user.division.clone(),
        Field::Location => user.location.clone(),
        Field::ManagerEmployeeId => user.manager_employee_id.as_ref().map(|m| m.to_string()),
        Field::HomeAddressLine1 => home(|a| &a.line1),
        Field::HomeAddressLine2 => home(|a| &a.line2),
        Field::HomeCity => home(|a| &a.city),
        Field::HomeRegion => home(|a| &a.region),
        Field::HomePostalCode => home(|a| &a.postal_code),
        Field::HomeCountry => home(|a| &a.country),
        Field::WorkAddressLine1 => work(|a| &a.line1),
        Field::WorkAddressLine2 => work(|a| &a.line2),
        Field::WorkCity => work(|a| &a.city),
        Field::WorkRegion => work(|a| &a.region),
        Field::WorkPostalCode => work(|a| &a.postal_code),
        Field::WorkCountry => work(|a| &a.country),
        Field::HireDate => user.hire_date.map(format_date),
        Field::TerminationDate => user.termination_date.map(format_date),
        Field::Status => user.employment_status.clone(),
        Field::EmploymentStatus => user
            .raw_attributes
            .iter()
            .filter(|(k, _)| builtin(&normalize_key(k)) == Some(Known::Field(field)))
            .find_map(|(_, v)| match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                _ => None,
            }),
        Field::Username => user.username.clone(),
        Field::LastChanged => user.source_timestamp.and_then(|t| t.format(&Rfc3339).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{apply, ApplyContext};
    use crate::record::{record_from_fields, MappingConfig};
    use domain::DirectoryId;
    use serde_json::json;

    #[test]
    fn every_field_reads_back_what_was_mapped() {
        let sent = json!({
            "employeeNumber": "E1", "firstName": "A", "middleName": "B", "lastName": "C",
            "preferredName": "D", "displayName": "E F", "workEmail": "w@x.io",
            "homeEmail": "h@x.io", "workPhone": "1", "Work Ext.": "11", "mobilePhone": "2",
            "homePhone": "3",
            "jobTitle": "T", "department": "Dep", "division": "Div", "location": "L",
            "supervisorEId": "9", "address1": "a1", "address2": "a2", "city": "c",
            "state": "s", "zipcode": "z", "country": "k", "workAddressLine1": "w1",
            "workAddressLine2": "w2", "workCity": "wc", "workRegion": "wr",
            "workPostalCode": "wz", "workCountry": "wk", "hireDate": "2020-01-02",
            "terminationDate": "2030-01-02", "status": "Active",
            "Employment Status": "Full-Time", "username": "u",
            "lastChanged": "2024-01-01T00:00:00Z",
        });
        let record = record_from_fields(
            "1",
            sent.as_object().unwrap(),
            &[],
            &MappingConfig::default(),
        )
        .unwrap();
        assert_eq!(record.fields.len(), Field::ALL.len());
        let ctx = ApplyContext {
            directory_id: DirectoryId::parse("d").unwrap(),
            today: time::macros::date!(2025 - 01 - 01),
            pre_start_days: 0,
            source_timestamp: None,
            group_sources: Vec::new(),
        };
        let user = apply(None, &record, &ctx);
        for field in Field::ALL {
            assert_eq!(
                user_field(&user, field).as_deref(),
                record.fields[&field].as_value(),
                "{field}"
            );
        }
    }
}
