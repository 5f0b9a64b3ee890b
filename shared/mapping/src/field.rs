//! The canonical fields of a [`domain::DirectoryUser`], BambooHR's three vocabularies for
//! them, and the field lists requested from each BambooHR endpoint.
//!
//! BambooHR names one field differently per surface: `jobTitle` on the employee
//! endpoints, `jobInformationJobTitle` in datasets, "Job Title" in field-based webhooks.
//! This module knows all of them (plus each field's own canonical key, so aliases and
//! custom-field maps can point anywhere) and matches keys case-insensitively, ignoring
//! whitespace and a trailing ':'.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// A canonical field of a DirectoryUser that BambooHR fields map to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// "Employee #", which admins may edit (not the immutable employee id).
    EmployeeNumber,
    /// Legal first name.
    FirstName,
    /// Middle name.
    MiddleName,
    /// Last name.
    LastName,
    /// Preferred first name.
    PreferredName,
    /// BambooHR's own display name, when it sends one.
    DisplayName,
    /// Work email: the primary email and the match key of SCIM and upsert targets.
    WorkEmail,
    /// Home email.
    HomeEmail,
    /// Desk phone.
    WorkPhone,
    /// The desk phone's extension (`workPhoneExtension`, "Work Ext.").
    WorkPhoneExtension,
    /// Mobile phone.
    MobilePhone,
    /// Home phone.
    HomePhone,
    /// Current job title.
    JobTitle,
    /// Current department.
    Department,
    /// Current division.
    Division,
    /// Current (work) location name.
    Location,
    /// The manager's BambooHR employee id (`supervisorEId`, not the supervisor's name).
    ManagerEmployeeId,
    /// Home address, first street line (BambooHR's `address1`).
    HomeAddressLine1,
    /// Home address, second street line.
    HomeAddressLine2,
    /// Home city.
    HomeCity,
    /// Home state or region.
    HomeRegion,
    /// Home postal code.
    HomePostalCode,
    /// Home country.
    HomeCountry,
    /// Work address, first street line: the street of the employee's Location
    /// ("Location Street 1" in the seed table and in reports).
    WorkAddressLine1,
    /// Work address, second street line.
    WorkAddressLine2,
    /// Work city.
    WorkCity,
    /// Work state or region.
    WorkRegion,
    /// Work postal code.
    WorkPostalCode,
    /// Work country.
    WorkCountry,
    /// Hire date (`YYYY-MM-DD`).
    HireDate,
    /// Termination date (`YYYY-MM-DD`).
    TerminationDate,
    /// BambooHR's status: "Active" or "Inactive".
    Status,
    /// The employment status name ("Full-Time", "Contractor"). A DirectoryUser has no
    /// slot for it: it stays in the raw attributes unless the custom-field map names it.
    EmploymentStatus,
    /// A username (no standard BambooHR field: reach it by alias or custom key).
    Username,
    /// When BambooHR last changed the employee (RFC 3339).
    LastChanged,
}

/// What kind of text a field holds, which decides how its value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Free text, kept as sent (trimmed).
    Text,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp.
    Timestamp,
    /// Another employee's BambooHR id.
    EmployeeRef,
}

impl Field {
    /// Every field, in declaration order.
    pub const ALL: [Field; 35] = [
        Field::EmployeeNumber,
        Field::FirstName,
        Field::MiddleName,
        Field::LastName,
        Field::PreferredName,
        Field::DisplayName,
        Field::WorkEmail,
        Field::HomeEmail,
        Field::WorkPhone,
        Field::WorkPhoneExtension,
        Field::MobilePhone,
        Field::HomePhone,
        Field::JobTitle,
        Field::Department,
        Field::Division,
        Field::Location,
        Field::ManagerEmployeeId,
        Field::HomeAddressLine1,
        Field::HomeAddressLine2,
        Field::HomeCity,
        Field::HomeRegion,
        Field::HomePostalCode,
        Field::HomeCountry,
        Field::WorkAddressLine1,
        Field::WorkAddressLine2,
        Field::WorkCity,
        Field::WorkRegion,
        Field::WorkPostalCode,
        Field::WorkCountry,
        Field::HireDate,
        Field::TerminationDate,
        Field::Status,
        Field::EmploymentStatus,
        Field::Username,
        Field::LastChanged,
    ];

    /// The field's canonical key (camelCase). It is accepted as a key in any payload,
    /// and is the name used in error messages.
    pub fn key(self) -> &'static str {
        match self {
            Field::EmployeeNumber => "employeeNumber",
            Field::FirstName => "firstName",
            Field::MiddleName => "middleName",
            Field::LastName => "lastName",
            Field::PreferredName => "preferredName",
            Field::DisplayName => "displayName",
            Field::WorkEmail => "workEmail",
            Field::HomeEmail => "homeEmail",
            Field::WorkPhone => "workPhone",
            Field::WorkPhoneExtension => "workPhoneExtension",
            Field::MobilePhone => "mobilePhone",
            Field::HomePhone => "homePhone",
            Field::JobTitle => "jobTitle",
            Field::Department => "department",
            Field::Division => "division",
            Field::Location => "location",
            Field::ManagerEmployeeId => "managerEmployeeId",
            Field::HomeAddressLine1 => "homeAddressLine1",
            Field::HomeAddressLine2 => "homeAddressLine2",
            Field::HomeCity => "homeCity",
            Field::HomeRegion => "homeRegion",
            Field::HomePostalCode => "homePostalCode",
            Field::HomeCountry => "homeCountry",
            Field::WorkAddressLine1 => "workAddressLine1",
            Field::WorkAddressLine2 => "workAddressLine2",
            Field::WorkCity => "workCity",
            Field::WorkRegion => "workRegion",
            Field::WorkPostalCode => "workPostalCode",
            Field::WorkCountry => "workCountry",
            Field::HireDate => "hireDate",
            Field::TerminationDate => "terminationDate",
            Field::Status => "status",
            Field::EmploymentStatus => "employmentStatus",
            Field::Username => "username",
            Field::LastChanged => "lastChanged",
        }
    }

    /// The field a key of any BambooHR vocabulary (or a canonical key) names, ignoring
    /// case, whitespace and a trailing ':'. Admin aliases are not consulted here; see
    /// [`crate::MappingConfig::field_for`].
    pub fn from_key(key: &str) -> Option<Field> {
        match builtin(&normalize_key(key)) {
            Some(Known::Field(f)) => Some(f),
            _ => None,
        }
    }

    pub(crate) fn kind(self) -> FieldKind {
        match self {
            Field::HireDate | Field::TerminationDate => FieldKind::Date,
            Field::LastChanged => FieldKind::Timestamp,
            Field::ManagerEmployeeId => FieldKind::EmployeeRef,
            _ => FieldKind::Text,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One value as BambooHR reported it.
///
/// `Debug` never shows the text of a value (it is HR data), only its length.
#[derive(Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// A value, trimmed; dates are `YYYY-MM-DD`, timestamps RFC 3339.
    Value(String),
    /// BambooHR says the field is blank (null or "" for a field the caller may see):
    /// clears the stored value.
    Empty,
    /// Listed in `_restrictedFields` (or null because of permissions): never clears;
    /// the stored value is kept.
    Restricted,
}

impl FieldValue {
    /// The text, when there is a value.
    pub fn as_value(&self) -> Option<&str> {
        match self {
            FieldValue::Value(s) => Some(s),
            FieldValue::Empty | FieldValue::Restricted => None,
        }
    }

    /// How much this value says, used to pick one when two keys of a payload name the
    /// same field: a value beats a restriction, which beats a blank (so a blank never
    /// wins over information, and a restriction never clears).
    pub(crate) fn rank(&self) -> u8 {
        match self {
            FieldValue::Value(_) => 2,
            FieldValue::Restricted => 1,
            FieldValue::Empty => 0,
        }
    }
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Value(s) => write!(f, "Value(<{} chars>)", s.chars().count()),
            FieldValue::Empty => f.write_str("Empty"),
            FieldValue::Restricted => f.write_str("Restricted"),
        }
    }
}

/// What a built-in key names: a field, or the employee's own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// A canonical field.
    Field(Field),
    /// The employee id itself (`id`, `employeeId`).
    EmployeeId,
}

/// Every key BambooHR uses for a field, across the employee endpoints, datasets v2 and
/// field-based webhook display names. Canonical keys are added by [`builtin`].
const VOCABULARY: &[(&str, Known)] = &[
    // The employee's own id.
    ("id", Known::EmployeeId),
    ("employeeId", Known::EmployeeId),
    ("Employee ID", Known::EmployeeId),
    // Employee endpoints (GET /api/v1/employees, GET /api/v1/employees/{id}).
    ("employeeNumber", Known::Field(Field::EmployeeNumber)),
    ("jobTitleName", Known::Field(Field::JobTitle)),
    ("departmentName", Known::Field(Field::Department)),
    ("divisionName", Known::Field(Field::Division)),
    ("locationName", Known::Field(Field::Location)),
    ("supervisorEId", Known::Field(Field::ManagerEmployeeId)),
    ("reportsToId", Known::Field(Field::ManagerEmployeeId)),
    ("address1", Known::Field(Field::HomeAddressLine1)),
    ("address2", Known::Field(Field::HomeAddressLine2)),
    ("city", Known::Field(Field::HomeCity)),
    ("state", Known::Field(Field::HomeRegion)),
    ("zipcode", Known::Field(Field::HomePostalCode)),
    ("country", Known::Field(Field::HomeCountry)),
    // (`workPhoneExtension` is also the canonical key.)
    (
        "employmentHistoryStatus",
        Known::Field(Field::EmploymentStatus),
    ),
    (
        "employmentStatusName",
        Known::Field(Field::EmploymentStatus),
    ),
    // Datasets v2 (employee dataset).
    ("email", Known::Field(Field::WorkEmail)),
    ("jobInformationJobTitle", Known::Field(Field::JobTitle)),
    ("jobInformationDepartment", Known::Field(Field::Department)),
    ("jobInformationDivision", Known::Field(Field::Division)),
    ("jobInformationLocation", Known::Field(Field::Location)),
    ("addressLineOne", Known::Field(Field::HomeAddressLine1)),
    ("addressLineTwo", Known::Field(Field::HomeAddressLine2)),
    ("workPhoneExt", Known::Field(Field::WorkPhoneExtension)),
    // The employee's Location's address (the work address), named in datasets as the
    // home address fields are, under the location.
    (
        "locationAddressLineOne",
        Known::Field(Field::WorkAddressLine1),
    ),
    (
        "locationAddressLineTwo",
        Known::Field(Field::WorkAddressLine2),
    ),
    ("locationCity", Known::Field(Field::WorkCity)),
    ("locationState", Known::Field(Field::WorkRegion)),
    ("locationZipCode", Known::Field(Field::WorkPostalCode)),
    ("locationCountry", Known::Field(Field::WorkCountry)),
    // Field-based webhook display names.
    ("Employee #", Known::Field(Field::EmployeeNumber)),
    ("First Name", Known::Field(Field::FirstName)),
    ("Middle Name", Known::Field(Field::MiddleName)),
    ("Last Name", Known::Field(Field::LastName)),
    ("Preferred Name", Known::Field(Field::PreferredName)),
    ("Display Name", Known::Field(Field::DisplayName)),
    ("Work Email", Known::Field(Field::WorkEmail)),
    ("Home Email", Known::Field(Field::HomeEmail)),
    ("Work Phone", Known::Field(Field::WorkPhone)),
    ("Mobile Phone", Known::Field(Field::MobilePhone)),
    ("Home Phone", Known::Field(Field::HomePhone)),
    ("Work Ext.", Known::Field(Field::WorkPhoneExtension)),
    ("Work Ext", Known::Field(Field::WorkPhoneExtension)),
    ("Work Phone Ext.", Known::Field(Field::WorkPhoneExtension)),
    (
        "Work Phone Extension",
        Known::Field(Field::WorkPhoneExtension),
    ),
    ("Location Street 1", Known::Field(Field::WorkAddressLine1)),
    ("Location Street 2", Known::Field(Field::WorkAddressLine2)),
    ("Location City", Known::Field(Field::WorkCity)),
    ("Location State", Known::Field(Field::WorkRegion)),
    ("Location ZIP", Known::Field(Field::WorkPostalCode)),
    ("Location Zip Code", Known::Field(Field::WorkPostalCode)),
    ("Location Country", Known::Field(Field::WorkCountry)),
    ("Job Title", Known::Field(Field::JobTitle)),
    ("Supervisor EID", Known::Field(Field::ManagerEmployeeId)),
    ("Address Line 1", Known::Field(Field::HomeAddressLine1)),
    ("Address Line 2", Known::Field(Field::HomeAddressLine2)),
    ("Zip Code", Known::Field(Field::HomePostalCode)),
    ("Hire Date", Known::Field(Field::HireDate)),
    ("Termination Date", Known::Field(Field::TerminationDate)),
    ("Employment Status", Known::Field(Field::EmploymentStatus)),
    ("Last Changed", Known::Field(Field::LastChanged)),
];

/// Lowercases a key and drops its whitespace and trailing ':', so "Work  email :" and
/// "workEmail" meet. Unicode letters are lowercased, not dropped.
pub(crate) fn normalize_key(key: &str) -> String {
    key.trim()
        .trim_end_matches(':')
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

fn table() -> &'static BTreeMap<String, Known> {
    static TABLE: OnceLock<BTreeMap<String, Known>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = BTreeMap::new();
        for f in Field::ALL {
            t.insert(normalize_key(f.key()), Known::Field(f));
        }
        for (key, known) in VOCABULARY {
            t.insert(normalize_key(key), *known);
        }
        t
    })
}

/// Looks a normalized key up in the built-in vocabularies.
pub(crate) fn builtin(normalized: &str) -> Option<Known> {
    table().get(normalized).copied()
}

/// The field names to request from POST /api/v2/datasets/employee/data for the standard
/// field set (what the simulator serves, too).
pub fn dataset_fields() -> Vec<&'static str> {
    vec![
        "employeeId",
        "employeeNumber",
        "firstName",
        "middleName",
        "lastName",
        "preferredName",
        "email",
        "homeEmail",
        "workPhone",
        "mobilePhone",
        "homePhone",
        "jobInformationJobTitle",
        "jobInformationDepartment",
        "jobInformationDivision",
        "jobInformationLocation",
        "supervisorEId",
        "addressLineOne",
        "addressLineTwo",
        "city",
        "state",
        "zipCode",
        "country",
        "hireDate",
        "terminationDate",
        "status",
        "employmentStatus",
    ]
}

/// The field names to request from GET /api/v1/employees (`fields=`) and GET
/// /api/v1/employees/{id} for the standard field set. The list endpoint silently ignores
/// names it does not know, so one list serves both: it carries each endpoint's spelling
/// (`jobTitleName` and `jobTitle`, `reportsToId` and `supervisorEId`, ...), and every
/// spelling maps to the same [`Field`].
pub fn employee_endpoint_fields() -> Vec<&'static str> {
    vec![
        "employeeNumber",
        "firstName",
        "middleName",
        "lastName",
        "preferredName",
        "displayName",
        "workEmail",
        "homeEmail",
        "workPhone",
        "workPhoneExtension",
        "mobilePhone",
        "homePhone",
        "jobTitle",
        "jobTitleName",
        "department",
        "departmentName",
        "division",
        "divisionName",
        "location",
        "locationName",
        "supervisorEId",
        "reportsToId",
        "address1",
        "address2",
        "city",
        "state",
        "zipcode",
        "country",
        "hireDate",
        "terminationDate",
        "status",
        "employmentStatus",
        "employmentHistoryStatus",
        "employmentStatusName",
        "lastChanged",
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_vocabulary_entries_collide_after_normalizing() {
        let mut seen: BTreeMap<String, Known> = BTreeMap::new();
        for f in Field::ALL {
            seen.insert(normalize_key(f.key()), Known::Field(f));
        }
        for (key, known) in VOCABULARY {
            if let Some(prev) = seen.insert(normalize_key(key), *known) {
                assert_eq!(prev, *known, "{key} names two things");
            }
        }
    }

    #[test]
    fn canonical_keys_are_unique_and_map_back_to_their_field() {
        for f in Field::ALL {
            assert_eq!(Field::from_key(f.key()), Some(f));
        }
        let mut keys: Vec<_> = Field::ALL.iter().map(|f| f.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Field::ALL.len());
    }

    #[test]
    fn display_names_match_ignoring_case_spacing_and_a_trailing_colon() {
        assert_eq!(Field::from_key("Work Email"), Some(Field::WorkEmail));
        assert_eq!(Field::from_key("  work   EMAIL : "), Some(Field::WorkEmail));
        assert_eq!(Field::from_key("WorkEmail:"), Some(Field::WorkEmail));
        assert_eq!(Field::from_key("zip code"), Some(Field::HomePostalCode));
        assert_eq!(Field::from_key("Zipcode"), Some(Field::HomePostalCode));
        assert_eq!(Field::from_key("employee #"), Some(Field::EmployeeNumber));
    }

    #[test]
    fn the_work_extension_and_the_location_address_are_known_in_every_vocabulary() {
        for key in [
            "workPhoneExtension",
            "workPhoneExt",
            "Work Ext.",
            "Work Phone Ext.",
        ] {
            assert_eq!(
                Field::from_key(key),
                Some(Field::WorkPhoneExtension),
                "{key}"
            );
        }
        let location = [
            (
                "Location Street 1",
                "locationAddressLineOne",
                Field::WorkAddressLine1,
            ),
            (
                "Location Street 2",
                "locationAddressLineTwo",
                Field::WorkAddressLine2,
            ),
            ("Location City", "locationCity", Field::WorkCity),
            ("Location State", "locationState", Field::WorkRegion),
            ("Location ZIP", "locationZipCode", Field::WorkPostalCode),
            ("Location Country", "locationCountry", Field::WorkCountry),
        ];
        for (display, dataset, field) in location {
            assert_eq!(Field::from_key(display), Some(field), "{display}");
            assert_eq!(Field::from_key(dataset), Some(field), "{dataset}");
            assert_eq!(Field::from_key(field.key()), Some(field));
        }
        assert!(employee_endpoint_fields().contains(&"workPhoneExtension"));
    }

    #[test]
    fn reporting_to_is_a_name_and_never_the_manager_id() {
        assert_eq!(Field::from_key("Reporting to"), None);
        assert_eq!(Field::from_key("reportsToName"), None);
        assert_eq!(
            Field::from_key("Supervisor EID"),
            Some(Field::ManagerEmployeeId)
        );
    }

    #[test]
    fn every_requested_field_maps_to_a_field_or_the_employee_id() {
        for key in dataset_fields()
            .into_iter()
            .chain(employee_endpoint_fields())
        {
            assert!(builtin(&normalize_key(key)).is_some(), "{key} is unmapped");
        }
    }

    #[test]
    fn dataset_fields_are_exactly_the_simulated_set() {
        assert_eq!(dataset_fields().len(), 26);
        assert!(dataset_fields().contains(&"jobInformationJobTitle"));
    }

    #[test]
    fn debug_output_of_a_value_hides_its_text() {
        let shown = format!("{:?}", FieldValue::Value("ada@example.com".into()));
        assert!(!shown.contains("ada"));
        assert_eq!(shown, "Value(<15 chars>)");
    }
}
