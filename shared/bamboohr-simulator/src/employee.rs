//! The simulator's employee record and BambooHR's names for its fields.
//!
//! BambooHR names one field differently per surface: `jobTitle` on get-employee,
//! `jobTitleName` on the employee list, `jobInformationJobTitle` in datasets v2, "Job Title"
//! in field-based webhooks. [`Field`] is the simulator's canonical field; each surface has
//! its own lookup from its names to it, so a request using another surface's name is
//! treated the way BambooHR treats an unknown name there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

time::serde::format_description!(pub(crate) ymd, Date, "[year]-[month]-[day]");

/// BambooHR's employee status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EmployeeStatus {
    /// Employed now (including employees with a future termination date).
    #[default]
    Active,
    /// Terminated, or hired with a start date in the future.
    Inactive,
}

impl EmployeeStatus {
    /// The text BambooHR uses.
    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeStatus::Active => "Active",
            EmployeeStatus::Inactive => "Inactive",
        }
    }

    /// Reads BambooHR's text, ignoring case.
    pub fn parse(text: &str) -> Option<Self> {
        if text.trim().eq_ignore_ascii_case("active") {
            Some(EmployeeStatus::Active)
        } else if text.trim().eq_ignore_ascii_case("inactive") {
            Some(EmployeeStatus::Inactive)
        } else {
            None
        }
    }
}

/// One employee's canonical values, from which every endpoint's answer is rendered.
///
/// JSON (the `/_sim` control API and `--company-file`) uses the camelCase names below;
/// dates are `YYYY-MM-DD`, `lastChanged` RFC 3339, and missing fields take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimEmployee {
    /// BambooHR's immutable numeric id (assigned on hire when empty).
    pub employee_id: String,
    /// "Employee #", editable by admins.
    pub employee_number: Option<String>,
    /// Legal first name.
    pub first_name: String,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Last name.
    pub last_name: String,
    /// Preferred first name.
    pub preferred_name: Option<String>,
    /// Work email (some employees have none).
    pub work_email: Option<String>,
    /// Home email.
    pub home_email: Option<String>,
    /// Work phone.
    pub work_phone: Option<String>,
    /// Mobile phone.
    pub mobile_phone: Option<String>,
    /// Home phone.
    pub home_phone: Option<String>,
    /// Current job title.
    pub job_title: Option<String>,
    /// Current department.
    pub department: Option<String>,
    /// Current division.
    pub division: Option<String>,
    /// Current location.
    pub location: Option<String>,
    /// The manager's employee id.
    #[serde(rename = "supervisorEId")]
    pub supervisor_eid: Option<String>,
    /// Home address, first line.
    pub address1: Option<String>,
    /// Home address, second line.
    pub address2: Option<String>,
    /// Home city.
    pub city: Option<String>,
    /// Home state or region.
    pub state: Option<String>,
    /// Home postal code.
    pub zipcode: Option<String>,
    /// Home country.
    pub country: Option<String>,
    /// Hire date.
    #[serde(with = "ymd::option")]
    pub hire_date: Option<Date>,
    /// Termination date (past or future).
    #[serde(with = "ymd::option")]
    pub termination_date: Option<Date>,
    /// Active or Inactive.
    pub status: EmployeeStatus,
    /// Employment status name ("Full-Time", "Contractor", "Terminated").
    pub employment_status: Option<String>,
    /// Custom fields by API name (e.g. `customLitmosAccess` = "Yes"/"No").
    pub custom: BTreeMap<String, String>,
    /// When BambooHR last changed the employee (whole seconds).
    #[serde(with = "time::serde::rfc3339")]
    pub last_changed: OffsetDateTime,
    /// Deleted: gone from every listing, reported as Deleted by employees/changed.
    pub deleted: bool,
}

impl Default for SimEmployee {
    fn default() -> Self {
        Self {
            employee_id: String::new(),
            employee_number: None,
            first_name: String::new(),
            middle_name: None,
            last_name: String::new(),
            preferred_name: None,
            work_email: None,
            home_email: None,
            work_phone: None,
            mobile_phone: None,
            home_phone: None,
            job_title: None,
            department: None,
            division: None,
            location: None,
            supervisor_eid: None,
            address1: None,
            address2: None,
            city: None,
            state: None,
            zipcode: None,
            country: None,
            hire_date: None,
            termination_date: None,
            status: EmployeeStatus::Active,
            employment_status: None,
            custom: BTreeMap::new(),
            last_changed: OffsetDateTime::UNIX_EPOCH,
            deleted: false,
        }
    }
}

/// A field of [`SimEmployee`], independent of any surface's name for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// The immutable id.
    EmployeeId,
    /// "Employee #".
    EmployeeNumber,
    /// First name.
    FirstName,
    /// Middle name.
    MiddleName,
    /// Last name.
    LastName,
    /// Preferred name.
    PreferredName,
    /// Preferred (else first) name and last name.
    DisplayName,
    /// Work email.
    WorkEmail,
    /// Home email.
    HomeEmail,
    /// Work email, else home email.
    BestEmail,
    /// Work phone.
    WorkPhone,
    /// Mobile phone.
    MobilePhone,
    /// Home phone.
    HomePhone,
    /// Job title.
    JobTitle,
    /// Department.
    Department,
    /// Division.
    Division,
    /// Location.
    Location,
    /// The manager's employee id.
    SupervisorEId,
    /// The manager's display name.
    SupervisorName,
    /// Address line 1.
    Address1,
    /// Address line 2.
    Address2,
    /// City.
    City,
    /// State.
    State,
    /// Zip code.
    Zipcode,
    /// Country.
    Country,
    /// Hire date.
    HireDate,
    /// Termination date.
    TerminationDate,
    /// Active / Inactive.
    Status,
    /// Employment status name.
    EmploymentStatus,
    /// Last change timestamp.
    LastChanged,
    /// A field BambooHR has but the simulator does not model (always blank).
    Unmodeled,
    /// A custom field, by API name.
    Custom(String),
}

/// One field's names across the surfaces.
struct Names {
    field: Field,
    /// [`SimEmployee`]'s JSON name.
    key: &'static str,
    /// Datasets v2 name.
    dataset: Option<&'static str>,
    /// get-employee name.
    get: Option<&'static str>,
    /// Field-based webhook display name.
    display: Option<&'static str>,
}

const fn n(
    field: Field,
    key: &'static str,
    dataset: Option<&'static str>,
    get: Option<&'static str>,
    display: Option<&'static str>,
) -> Names {
    Names {
        field,
        key,
        dataset,
        get,
        display,
    }
}

const NAMES: &[Names] = &[
    n(
        Field::EmployeeId,
        "employeeId",
        Some("employeeId"),
        Some("id"),
        Some("Employee ID"),
    ),
    n(
        Field::EmployeeNumber,
        "employeeNumber",
        Some("employeeNumber"),
        Some("employeeNumber"),
        Some("Employee #"),
    ),
    n(
        Field::FirstName,
        "firstName",
        Some("firstName"),
        Some("firstName"),
        Some("First Name"),
    ),
    n(
        Field::MiddleName,
        "middleName",
        Some("middleName"),
        Some("middleName"),
        Some("Middle Name"),
    ),
    n(
        Field::LastName,
        "lastName",
        Some("lastName"),
        Some("lastName"),
        Some("Last Name"),
    ),
    n(
        Field::PreferredName,
        "preferredName",
        Some("preferredName"),
        Some("preferredName"),
        Some("Preferred Name"),
    ),
    n(
        Field::DisplayName,
        "displayName",
        None,
        Some("displayName"),
        Some("Display Name"),
    ),
    n(
        Field::WorkEmail,
        "workEmail",
        Some("email"),
        Some("workEmail"),
        Some("Work Email"),
    ),
    n(
        Field::HomeEmail,
        "homeEmail",
        Some("homeEmail"),
        Some("homeEmail"),
        Some("Home Email"),
    ),
    n(
        Field::WorkPhone,
        "workPhone",
        Some("workPhone"),
        Some("workPhone"),
        Some("Work Phone"),
    ),
    n(
        Field::MobilePhone,
        "mobilePhone",
        Some("mobilePhone"),
        Some("mobilePhone"),
        Some("Mobile Phone"),
    ),
    n(
        Field::HomePhone,
        "homePhone",
        Some("homePhone"),
        Some("homePhone"),
        Some("Home Phone"),
    ),
    n(
        Field::JobTitle,
        "jobTitle",
        Some("jobInformationJobTitle"),
        Some("jobTitle"),
        Some("Job Title"),
    ),
    n(
        Field::Department,
        "department",
        Some("jobInformationDepartment"),
        Some("department"),
        Some("Department"),
    ),
    n(
        Field::Division,
        "division",
        Some("jobInformationDivision"),
        Some("division"),
        Some("Division"),
    ),
    n(
        Field::Location,
        "location",
        Some("jobInformationLocation"),
        Some("location"),
        Some("Location"),
    ),
    n(
        Field::SupervisorEId,
        "supervisorEId",
        Some("supervisorEId"),
        Some("supervisorEId"),
        Some("Supervisor EID"),
    ),
    n(
        Field::SupervisorName,
        "supervisor",
        None,
        Some("supervisor"),
        Some("Reporting to"),
    ),
    n(
        Field::Address1,
        "address1",
        Some("addressLineOne"),
        Some("address1"),
        Some("Address Line 1"),
    ),
    n(
        Field::Address2,
        "address2",
        Some("addressLineTwo"),
        Some("address2"),
        Some("Address Line 2"),
    ),
    n(
        Field::City,
        "city",
        Some("city"),
        Some("city"),
        Some("City"),
    ),
    n(
        Field::State,
        "state",
        Some("state"),
        Some("state"),
        Some("State"),
    ),
    n(
        Field::Zipcode,
        "zipcode",
        Some("zipCode"),
        Some("zipcode"),
        Some("Zip Code"),
    ),
    n(
        Field::Country,
        "country",
        Some("country"),
        Some("country"),
        Some("Country"),
    ),
    n(
        Field::HireDate,
        "hireDate",
        Some("hireDate"),
        Some("hireDate"),
        Some("Hire Date"),
    ),
    n(
        Field::TerminationDate,
        "terminationDate",
        Some("terminationDate"),
        Some("terminationDate"),
        Some("Termination Date"),
    ),
    n(
        Field::Status,
        "status",
        Some("status"),
        Some("status"),
        Some("Status"),
    ),
    n(
        Field::EmploymentStatus,
        "employmentStatus",
        Some("employmentStatus"),
        Some("employmentHistoryStatus"),
        Some("Employment Status"),
    ),
    n(
        Field::LastChanged,
        "lastChanged",
        None,
        Some("lastChanged"),
        Some("Last Changed"),
    ),
];

/// The list endpoint's fixed fields, always returned (GetEmployeesEmployeeBaseResponse).
pub(crate) const LIST_DEFAULT_FIELDS: &[(&str, Field)] = &[
    ("firstName", Field::FirstName),
    ("lastName", Field::LastName),
    ("preferredName", Field::PreferredName),
    ("photoUrl", Field::Unmodeled),
    ("jobTitleName", Field::JobTitle),
    ("status", Field::Status),
];

/// The list endpoint's optional fields (`EmployeeOptionalField`); other names are
/// ignored, as BambooHR documents.
pub(crate) const LIST_OPTIONAL_FIELDS: &[(&str, Field)] = &[
    ("workEmail", Field::WorkEmail),
    ("homeEmail", Field::HomeEmail),
    ("bestEmail", Field::BestEmail),
    ("middleName", Field::MiddleName),
    ("workPhone", Field::WorkPhone),
    ("workPhoneExtension", Field::Unmodeled),
    ("mobilePhone", Field::MobilePhone),
    ("homePhone", Field::HomePhone),
    ("skypeUsername", Field::Unmodeled),
    ("linkedinUrl", Field::Unmodeled),
    ("facebookUrl", Field::Unmodeled),
    ("instagramUrl", Field::Unmodeled),
    ("twitterUrl", Field::Unmodeled),
    ("pinterestUrl", Field::Unmodeled),
    ("birthDate", Field::Unmodeled),
    ("hireDate", Field::HireDate),
    ("divisionName", Field::Division),
    ("divisionId", Field::Unmodeled),
    ("departmentName", Field::Department),
    ("departmentId", Field::Unmodeled),
    ("locationName", Field::Location),
    ("locationId", Field::Unmodeled),
    ("jobTitleId", Field::Unmodeled),
    ("employmentStatusName", Field::EmploymentStatus),
    ("employmentStatusId", Field::Unmodeled),
    ("reportsToName", Field::SupervisorName),
    ("reportsToId", Field::SupervisorEId),
];

impl Field {
    /// Every modeled standard field, in a fixed order.
    pub fn standard() -> impl Iterator<Item = Field> {
        NAMES.iter().map(|n| n.field.clone())
    }

    /// The canonical key: [`SimEmployee`]'s JSON name, accepted by
    /// [`crate::Simulator::update`].
    pub fn key(&self) -> String {
        match self {
            Field::Custom(name) => name.clone(),
            Field::BestEmail => "bestEmail".into(),
            Field::Unmodeled => "unmodeled".into(),
            other => NAMES
                .iter()
                .find(|n| &n.field == other)
                .map(|n| n.key.to_string())
                .unwrap_or_default(),
        }
    }

    /// The field a canonical key names (unknown keys are custom fields).
    pub fn from_key(key: &str) -> Field {
        NAMES
            .iter()
            .find(|n| n.key == key)
            .map(|n| n.field.clone())
            .unwrap_or_else(|| Field::Custom(key.to_string()))
    }

    /// The field a datasets v2 name names, if a standard one.
    pub(crate) fn from_dataset_name(name: &str) -> Option<Field> {
        NAMES
            .iter()
            .find(|n| n.dataset == Some(name))
            .map(|n| n.field.clone())
    }

    /// The field a get-employee name names, if a standard one.
    pub(crate) fn from_get_name(name: &str) -> Option<Field> {
        NAMES
            .iter()
            .find(|n| n.get == Some(name))
            .map(|n| n.field.clone())
    }

    /// The field a list-endpoint name names (default or optional field).
    pub(crate) fn from_list_name(name: &str) -> Option<Field> {
        if name == "employeeId" {
            return Some(Field::EmployeeId);
        }
        LIST_DEFAULT_FIELDS
            .iter()
            .chain(LIST_OPTIONAL_FIELDS)
            .find(|(n, _)| *n == name)
            .map(|(_, f)| f.clone())
    }

    /// The English display name a field-based webhook uses.
    pub fn display_name(&self) -> String {
        match self {
            Field::Custom(name) => custom_display_name(name),
            other => NAMES
                .iter()
                .find(|n| &n.field == other)
                .and_then(|n| n.display)
                .map(str::to_string)
                .unwrap_or_else(|| other.key()),
        }
    }

    /// The field a webhook display name names, among the standard fields and `custom`.
    pub(crate) fn from_display_name<'a>(
        name: &str,
        custom: impl IntoIterator<Item = &'a String>,
    ) -> Option<Field> {
        if let Some(n) = NAMES.iter().find(|n| n.display == Some(name)) {
            return Some(n.field.clone());
        }
        custom
            .into_iter()
            .find(|c| custom_display_name(c) == name || *c == name)
            .map(|c| Field::Custom(c.clone()))
    }

    /// Any surface's name (canonical, dataset, get, list, display) to a field; used to read
    /// the restricted-field configuration.
    pub(crate) fn from_any_name(name: &str) -> Field {
        if let Some(n) = NAMES.iter().find(|n| {
            n.key == name
                || n.dataset == Some(name)
                || n.get == Some(name)
                || n.display == Some(name)
        }) {
            return n.field.clone();
        }
        match Field::from_list_name(name) {
            Some(f) if f != Field::Unmodeled => f,
            _ => Field::Custom(name.to_string()),
        }
    }
}

/// "customLitmosAccess" -> "Litmos Access": the label an admin would have typed.
pub(crate) fn custom_display_name(api_name: &str) -> String {
    let bare = api_name.strip_prefix("custom").unwrap_or(api_name);
    let mut out = String::new();
    for (i, c) in bare.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        if i == 0 {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(crate) fn format_timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

pub(crate) fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

impl SimEmployee {
    /// The employee's display name: preferred (else first) name and last name.
    pub fn display_name(&self) -> String {
        let first = self
            .preferred_name
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(&self.first_name);
        format!("{first} {}", self.last_name).trim().to_string()
    }

    /// The value of `field` as BambooHR renders it (dates `YYYY-MM-DD`, timestamps RFC
    /// 3339), `None` when blank. `manager` resolves [`Field::SupervisorName`].
    pub fn value(&self, field: &Field, manager: Option<&SimEmployee>) -> Option<String> {
        let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        match field {
            Field::EmployeeId => Some(self.employee_id.clone()),
            Field::EmployeeNumber => text(&self.employee_number),
            Field::FirstName => Some(self.first_name.clone()).filter(|s| !s.is_empty()),
            Field::MiddleName => text(&self.middle_name),
            Field::LastName => Some(self.last_name.clone()).filter(|s| !s.is_empty()),
            Field::PreferredName => text(&self.preferred_name),
            Field::DisplayName => Some(self.display_name()).filter(|s| !s.is_empty()),
            Field::WorkEmail => text(&self.work_email),
            Field::HomeEmail => text(&self.home_email),
            Field::BestEmail => text(&self.work_email).or_else(|| text(&self.home_email)),
            Field::WorkPhone => text(&self.work_phone),
            Field::MobilePhone => text(&self.mobile_phone),
            Field::HomePhone => text(&self.home_phone),
            Field::JobTitle => text(&self.job_title),
            Field::Department => text(&self.department),
            Field::Division => text(&self.division),
            Field::Location => text(&self.location),
            Field::SupervisorEId => text(&self.supervisor_eid),
            Field::SupervisorName => manager.map(SimEmployee::display_name),
            Field::Address1 => text(&self.address1),
            Field::Address2 => text(&self.address2),
            Field::City => text(&self.city),
            Field::State => text(&self.state),
            Field::Zipcode => text(&self.zipcode),
            Field::Country => text(&self.country),
            Field::HireDate => self.hire_date.map(format_date),
            Field::TerminationDate => self.termination_date.map(format_date),
            Field::Status => Some(self.status.as_str().to_string()),
            Field::EmploymentStatus => text(&self.employment_status),
            Field::LastChanged => Some(format_timestamp(self.last_changed)),
            Field::Unmodeled => None,
            Field::Custom(name) => self.custom.get(name).cloned().filter(|s| !s.is_empty()),
        }
    }

    /// Sets one field from text (`None` clears it). Names, dates and the status are
    /// checked; the id and derived fields cannot be set.
    pub fn set(&mut self, field: &Field, value: Option<String>) -> Result<(), String> {
        let value = value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let date = |v: &Option<String>| -> Result<Option<Date>, String> {
            match v {
                None => Ok(None),
                Some(s) => parse_date(s)
                    .map(Some)
                    .ok_or_else(|| "is not a YYYY-MM-DD date".to_string()),
            }
        };
        match field {
            Field::FirstName => {
                self.first_name = value.ok_or("cannot be blank")?;
            }
            Field::LastName => {
                self.last_name = value.ok_or("cannot be blank")?;
            }
            Field::EmployeeNumber => self.employee_number = value,
            Field::MiddleName => self.middle_name = value,
            Field::PreferredName => self.preferred_name = value,
            Field::WorkEmail => self.work_email = value,
            Field::HomeEmail => self.home_email = value,
            Field::WorkPhone => self.work_phone = value,
            Field::MobilePhone => self.mobile_phone = value,
            Field::HomePhone => self.home_phone = value,
            Field::JobTitle => self.job_title = value,
            Field::Department => self.department = value,
            Field::Division => self.division = value,
            Field::Location => self.location = value,
            Field::SupervisorEId => self.supervisor_eid = value,
            Field::Address1 => self.address1 = value,
            Field::Address2 => self.address2 = value,
            Field::City => self.city = value,
            Field::State => self.state = value,
            Field::Zipcode => self.zipcode = value,
            Field::Country => self.country = value,
            Field::HireDate => self.hire_date = date(&value)?,
            Field::TerminationDate => self.termination_date = date(&value)?,
            Field::Status => {
                self.status = value
                    .as_deref()
                    .and_then(EmployeeStatus::parse)
                    .ok_or("must be Active or Inactive")?;
            }
            Field::EmploymentStatus => self.employment_status = value,
            Field::Custom(name) => match value {
                Some(v) => {
                    self.custom.insert(name.clone(), v);
                }
                None => {
                    self.custom.remove(name);
                }
            },
            Field::EmployeeId
            | Field::DisplayName
            | Field::BestEmail
            | Field::SupervisorName
            | Field::LastChanged
            | Field::Unmodeled => return Err("cannot be set".into()),
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "employee_tests.rs"]
mod tests;
