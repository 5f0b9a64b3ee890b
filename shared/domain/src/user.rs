//! The normalized user every vocabulary maps to, and its lifecycle state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::fingerprint::Fingerprint;
use crate::ids::{DirectoryId, EmployeeId, GroupId, UserId};

time::serde::format_description!(pub(crate) iso_date, Date, "[year]-[month]-[day]");

/// Where a user stands in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum UserState {
    /// A future hire, before its pre-start window opens.
    Pending,
    /// Employed and inside (or past) its pre-start window.
    Active,
    /// Terminated (effective on the termination date) or BambooHR status Inactive.
    Inactive,
    /// Gone from BambooHR.
    Deleted,
}

impl UserState {
    /// The lowercase name used in events, filters and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Deleted => "deleted",
        }
    }

    /// The state a name of [`UserState::as_str`] stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Active, Self::Inactive, Self::Deleted]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// What an email address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailKind {
    /// The work address; primary when present.
    Work,
    /// The home address.
    Home,
}

/// One email address of a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email {
    /// The address as BambooHR holds it.
    pub value: String,
    /// Work or home.
    pub kind: EmailKind,
    /// Whether this is the user's primary address.
    pub primary: bool,
}

/// What a phone number is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhoneKind {
    /// Desk phone.
    Work,
    /// Mobile phone.
    Mobile,
    /// Home phone.
    Home,
}

/// One phone number of a user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone {
    /// The number as BambooHR holds it.
    pub value: String,
    /// Work, mobile or home.
    pub kind: PhoneKind,
    /// The extension (BambooHR's "Work Ext.", `workPhoneExtension`), digits as
    /// BambooHR holds them; only work phones have one. Left out of the stored JSON when
    /// absent, so users stored before it existed fingerprint as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
}

/// A postal address; every part optional because BambooHR requires none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// First street line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    /// Second street line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City or locality.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State, province or region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country (name or code, as BambooHR holds it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    /// True when no part is set, so an empty address is stored as none.
    pub fn is_empty(&self) -> bool {
        self.line1.is_none()
            && self.line2.is_none()
            && self.city.is_none()
            && self.region.is_none()
            && self.postal_code.is_none()
            && self.country.is_none()
    }
}

mod opt_date {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::Date;

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super::iso_date")] Date);

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        d.map(W).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// One employee of one directory, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    /// Stable id, derived from directory and employee id.
    pub id: UserId,
    /// The directory this user belongs to.
    pub directory_id: DirectoryId,
    /// BambooHR's immutable employee id.
    pub employee_id: EmployeeId,
    /// BambooHR's "Employee #", which admins may edit.
    pub employee_number: Option<String>,
    /// Email addresses; the work address is primary when present.
    pub emails: Vec<Email>,
    /// Username, when configured or derived.
    pub username: Option<String>,
    /// Legal first name.
    pub first_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Preferred first name.
    pub preferred_name: Option<String>,
    /// Display name: preferred (else first) name and last name.
    pub display_name: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Division.
    pub division: Option<String>,
    /// Location.
    pub location: Option<String>,
    /// The manager's BambooHR employee id.
    pub manager_employee_id: Option<EmployeeId>,
    /// Phone numbers.
    pub phones: Vec<Phone>,
    /// Work address.
    pub work_address: Option<Address>,
    /// Home address.
    pub home_address: Option<Address>,
    /// Hire date.
    #[serde(with = "opt_date", default)]
    pub hire_date: Option<Date>,
    /// Termination date.
    #[serde(with = "opt_date", default)]
    pub termination_date: Option<Date>,
    /// BambooHR's own status field ("Active"/"Inactive") as last seen.
    pub employment_status: Option<String>,
    /// Lifecycle state derived from status and dates.
    pub state: UserState,
    /// Fields the directory maps to named custom attributes.
    pub custom_attributes: BTreeMap<String, serde_json::Value>,
    /// Every field as BambooHR sent it, under BambooHR's key.
    pub raw_attributes: BTreeMap<String, serde_json::Value>,
    /// Groups the user is a member of.
    pub group_ids: Vec<GroupId>,
    /// Monotonic version, bumped by every stored change.
    pub version: u64,
    /// Content fingerprint of the mapped fields (see [`DirectoryUser::compute_fingerprint`]).
    pub fingerprint: Fingerprint,
    /// When BambooHR last changed this employee, when known.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub source_timestamp: Option<OffsetDateTime>,
    /// When this sync first stored the user (WorkOS's `created_at`); absent on users
    /// stored before it was recorded. Not part of the fingerprint.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
}

impl DirectoryUser {
    /// A user with only its identity set, in `state`; mapping fills the rest.
    pub fn new(directory_id: DirectoryId, employee_id: EmployeeId, state: UserState) -> Self {
        Self {
            id: UserId::derive(&directory_id, &employee_id),
            directory_id,
            employee_id,
            employee_number: None,
            emails: Vec::new(),
            username: None,
            first_name: None,
            middle_name: None,
            last_name: None,
            preferred_name: None,
            display_name: None,
            job_title: None,
            department: None,
            division: None,
            location: None,
            manager_employee_id: None,
            phones: Vec::new(),
            work_address: None,
            home_address: None,
            hire_date: None,
            termination_date: None,
            employment_status: None,
            state,
            custom_attributes: BTreeMap::new(),
            raw_attributes: BTreeMap::new(),
            group_ids: Vec::new(),
            version: 0,
            fingerprint: Fingerprint::EMPTY,
            source_timestamp: None,
            created_at: None,
        }
    }

    /// The attribute names of a serialized user (camelCase, as in events): what a
    /// target's field projection may name.
    pub fn attribute_names() -> Vec<&'static str> {
        vec![
            "id",
            "directoryId",
            "employeeId",
            "employeeNumber",
            "emails",
            "username",
            "firstName",
            "middleName",
            "lastName",
            "preferredName",
            "displayName",
            "jobTitle",
            "department",
            "division",
            "location",
            "managerEmployeeId",
            "phones",
            "workAddress",
            "homeAddress",
            "hireDate",
            "terminationDate",
            "employmentStatus",
            "state",
            "customAttributes",
            "rawAttributes",
            "groupIds",
            "version",
            "fingerprint",
            "sourceTimestamp",
            "createdAt",
        ]
    }

    /// The previous values of every attribute that differs between `before` and
    /// `self` (serialized names; bookkeeping such as version and fingerprint left out),
    /// for `previousAttributes` on updates.
    pub fn previous_attributes(
        &self,
        before: &DirectoryUser,
    ) -> serde_json::Map<String, serde_json::Value> {
        let now = serde_json::to_value(self).expect("a DirectoryUser always serializes");
        let was = serde_json::to_value(before).expect("a DirectoryUser always serializes");
        let mut out = serde_json::Map::new();
        if let (Some(now), Some(was)) = (now.as_object(), was.as_object()) {
            let keys: std::collections::BTreeSet<&String> = now.keys().chain(was.keys()).collect();
            for k in keys {
                if matches!(
                    k.as_str(),
                    "version" | "fingerprint" | "sourceTimestamp" | "createdAt"
                ) {
                    continue;
                }
                let old = was.get(k).cloned().unwrap_or(serde_json::Value::Null);
                if now.get(k).unwrap_or(&serde_json::Value::Null) != &old {
                    out.insert(k.clone(), old);
                }
            }
        }
        out
    }

    /// The primary email, else the work email, else any.
    pub fn primary_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary)
            .or_else(|| self.emails.iter().find(|e| e.kind == EmailKind::Work))
            .or_else(|| self.emails.first())
            .map(|e| e.value.as_str())
    }

    /// The work email, which SCIM and upsert targets use as their match key.
    pub fn work_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.kind == EmailKind::Work)
            .map(|e| e.value.as_str())
    }

    /// The fingerprint covers every mapped field and nothing that changes without the
    /// employee changing (version, fingerprint, source timestamp, raw attributes), so an
    /// unchanged employee always fingerprints the same.
    pub fn compute_fingerprint(&self) -> Fingerprint {
        let mut v = serde_json::to_value(self).expect("a DirectoryUser always serializes");
        if let Some(obj) = v.as_object_mut() {
            for k in [
                "version",
                "fingerprint",
                "sourceTimestamp",
                "rawAttributes",
                "createdAt",
            ] {
                obj.remove(k);
            }
        }
        Fingerprint::of_json(&v)
    }

    /// Recomputes and stores the fingerprint.
    pub fn refresh_fingerprint(&mut self) {
        self.fingerprint = self.compute_fingerprint();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> DirectoryUser {
        DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("7").unwrap(),
            UserState::Active,
        )
    }

    #[test]
    fn fingerprint_ignores_version_and_raw_attributes() {
        let mut a = user();
        a.first_name = Some("Ada".into());
        let mut b = a.clone();
        b.version = 9;
        b.raw_attributes.insert("x".into(), serde_json::json!(1));
        assert_eq!(a.compute_fingerprint(), b.compute_fingerprint());
        b.first_name = Some("Ida".into());
        assert_ne!(a.compute_fingerprint(), b.compute_fingerprint());
    }

    #[test]
    fn every_serialized_attribute_is_a_known_attribute_name() {
        let mut u = user();
        u.created_at = Some(OffsetDateTime::UNIX_EPOCH);
        let v = serde_json::to_value(&u).unwrap();
        let names = DirectoryUser::attribute_names();
        for k in v.as_object().unwrap().keys() {
            assert!(names.contains(&k.as_str()), "{k}");
        }
        assert_eq!(v.as_object().unwrap().len(), names.len());
    }

    #[test]
    fn previous_attributes_name_only_what_changed_with_its_old_value() {
        let mut before = user();
        before.first_name = Some("Ada".into());
        before.job_title = Some("Engineer".into());
        let mut after = before.clone();
        after.version = 2;
        after.job_title = Some("Staff Engineer".into());
        after.refresh_fingerprint();
        let prev = after.previous_attributes(&before);
        assert_eq!(prev.len(), 1);
        assert_eq!(prev["jobTitle"], "Engineer");
    }

    #[test]
    fn the_creation_time_is_not_part_of_the_fingerprint() {
        let a = user();
        let mut b = a.clone();
        b.created_at = Some(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(a.compute_fingerprint(), b.compute_fingerprint());
    }

    #[test]
    fn dates_serialize_as_iso_calendar_dates() {
        let mut u = user();
        u.hire_date = Some(time::macros::date!(2024 - 03 - 01));
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["hireDate"], "2024-03-01");
        assert_eq!(v["terminationDate"], serde_json::Value::Null);
        let back: DirectoryUser = serde_json::from_value(v).unwrap();
        assert_eq!(back, u);
    }

    #[test]
    fn primary_email_prefers_the_primary_flag() {
        let mut u = user();
        u.emails = vec![
            Email {
                value: "h@x".into(),
                kind: EmailKind::Home,
                primary: false,
            },
            Email {
                value: "w@x".into(),
                kind: EmailKind::Work,
                primary: true,
            },
        ];
        assert_eq!(u.primary_email(), Some("w@x"));
        assert_eq!(u.work_email(), Some("w@x"));
    }
}
