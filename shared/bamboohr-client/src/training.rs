//! Training types and employee training records, as BambooHR's OpenAPI has them
//! (`GET /api/v1/training/type`, `GET /api/v1/training/record/employee/{id}`): what
//! the compliance evidence derives its onboarding completion rate from, since the
//! public API has no onboarding-task endpoint.
//!
//! Both need more than employee access: listing types needs access to training
//! settings, records the permission to view the employee's training. A key without it
//! gets 403, returned as [`BambooError::Forbidden`] for the caller to report as "not
//! available for this key".

use serde::Deserialize;
use serde_json::Value;
use time::Date;

use crate::{BambooClient, BambooError};

/// One training type of the company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingType {
    /// The type's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether the training is required (BambooHR's `required`; null reads false).
    pub required: bool,
    /// Days after the hire date within which a new hire must complete it
    /// (`dueFromHireDate`; only set on required trainings).
    pub due_from_hire_days: Option<u32>,
    /// Whether it must be renewed (every `frequency_months`).
    pub renewable: bool,
    /// Months between renewals, for a renewable training.
    pub frequency_months: Option<u32>,
}

/// One completed training of an employee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRecord {
    /// The record's id.
    pub id: String,
    /// The employee's id.
    pub employee_id: String,
    /// The training type's id.
    pub type_id: String,
    /// When it was completed; None when BambooHR holds no (valid) date.
    pub completed: Option<Date>,
}

/// An id BambooHR writes as a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireId {
    Number(i64),
    Text(String),
}

impl WireId {
    fn into_string(self) -> String {
        match self {
            WireId::Number(n) => n.to_string(),
            WireId::Text(s) => s.trim().to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireType {
    id: WireId,
    #[serde(default)]
    name: String,
    #[serde(default)]
    renewable: Option<bool>,
    #[serde(default)]
    frequency: Option<u32>,
    #[serde(default)]
    due_from_hire_date: Option<u32>,
    #[serde(default)]
    required: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRecord {
    id: WireId,
    employee_id: WireId,
    #[serde(default)]
    completed: Option<String>,
    #[serde(rename = "type")]
    type_id: WireId,
}

fn bad(reason: impl Into<String>) -> BambooError {
    BambooError::BadResponse {
        reason: reason.into(),
    }
}

/// The values of an object keyed by id; an empty array (BambooHR's answer when there is
/// nothing) is no values.
fn keyed_values(body: &[u8], what: &str) -> Result<Vec<Value>, BambooError> {
    let root: Value = serde_json::from_slice(body)
        .map_err(|_| bad(format!("{what} is not the documented shape (not JSON)")))?;
    match root {
        Value::Object(map) => Ok(map.into_iter().map(|(_, v)| v).collect()),
        Value::Array(items) if items.is_empty() => Ok(Vec::new()),
        _ => Err(bad(format!("{what} is not an object keyed by id"))),
    }
}

fn ymd(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).ok()
}

impl BambooClient {
    /// Every training type of the company (`GET /api/v1/training/type`), in id order.
    /// Needs access to training settings: without it, [`BambooError::Forbidden`].
    pub async fn training_types(&self) -> Result<Vec<TrainingType>, BambooError> {
        let mut types = self
            .get_json("training_types", &["api", "v1", "training", "type"], |b| {
                keyed_values(b, "the training types")?
                    .into_iter()
                    .map(|v| {
                        let w: WireType = serde_json::from_value(v)
                            .map_err(|_| bad("a training type is not the documented shape"))?;
                        let required = w.required.unwrap_or(false);
                        let renewable = w.renewable.unwrap_or(false);
                        Ok(TrainingType {
                            id: w.id.into_string(),
                            name: w.name,
                            required,
                            due_from_hire_days: w.due_from_hire_date.filter(|_| required),
                            renewable,
                            frequency_months: w.frequency.filter(|_| renewable),
                        })
                    })
                    .collect::<Result<Vec<_>, BambooError>>()
            })
            .await?;
        types.sort_by_key(|t| (t.id.parse::<u64>().unwrap_or(u64::MAX), t.id.clone()));
        Ok(types)
    }

    /// An employee's training records (`GET /api/v1/training/record/employee/{id}`),
    /// oldest completion first. Needs the permission to view the employee's training:
    /// without it, [`BambooError::Forbidden`].
    pub async fn employee_training_records(
        &self,
        employee_id: &str,
    ) -> Result<Vec<TrainingRecord>, BambooError> {
        let mut records = self
            .get_json(
                "training_records",
                &["api", "v1", "training", "record", "employee", employee_id],
                |b| {
                    keyed_values(b, "the training records")?
                        .into_iter()
                        .map(|v| {
                            let w: WireRecord = serde_json::from_value(v).map_err(|_| {
                                bad("a training record is not the documented shape")
                            })?;
                            Ok(TrainingRecord {
                                id: w.id.into_string(),
                                employee_id: w.employee_id.into_string(),
                                type_id: w.type_id.into_string(),
                                completed: w.completed.as_deref().and_then(ymd),
                            })
                        })
                        .collect::<Result<Vec<_>, BambooError>>()
                },
            )
            .await?;
        records.sort_by_key(|r| (r.completed, r.id.clone()));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_array_means_no_records_and_an_object_is_keyed_by_id() {
        assert!(keyed_values(b"[]", "x").unwrap().is_empty());
        assert_eq!(keyed_values(br#"{"1": {"a": 1}}"#, "x").unwrap().len(), 1);
        assert!(keyed_values(b"[1]", "x").is_err());
        assert!(keyed_values(b"nope", "x").is_err());
    }

    #[test]
    fn completion_dates_are_read_as_yyyy_mm_dd_and_anything_else_is_none() {
        assert_eq!(ymd("2026-01-05"), Some(time::macros::date!(2026 - 01 - 05)));
        assert_eq!(ymd("0000-00-00"), None);
        assert_eq!(ymd(""), None);
    }
}
