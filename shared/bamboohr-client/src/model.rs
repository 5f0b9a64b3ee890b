//! What the client returns, and the parsers that turn BambooHR's JSON into it.
//!
//! Parsing happens once, here, at the edge: a body either becomes these types or a
//! [`BambooError::BadResponse`] whose reason names the part that did not fit (a path such
//! as `data[3].fields.employeeId`), never the content. Employee values stay
//! `serde_json::Value`s as BambooHR sent them; the mapping crate interprets them.

use std::fmt;

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::BambooError;

/// The key BambooHR uses to list fields the caller may not see.
pub(crate) const RESTRICTED_KEY: &str = "_restrictedFields";

/// One employee as an endpoint returned it: its id, the other fields under the names of
/// that endpoint's vocabulary, and the fields BambooHR withheld for lack of permission
/// (whose values, if present, are `null` and must never be read as "cleared").
#[derive(Clone, PartialEq)]
pub struct RawEmployee {
    /// BambooHR's immutable employee id.
    pub id: String,
    /// Every other field the endpoint returned, keyed as it named them.
    pub fields: Map<String, Value>,
    /// Fields withheld for lack of permission (`_restrictedFields`).
    pub restricted: Vec<String>,
}

impl fmt::Debug for RawEmployee {
    // Values are HR data: Debug shows the id and the field names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawEmployee")
            .field("id", &self.id)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("restricted", &self.restricted)
            .finish()
    }
}

/// One page of `POST /api/v2/datasets/employee/data`.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetPage {
    /// The employees of this page, in BambooHR's order.
    pub employees: Vec<RawEmployee>,
    /// This page's number (1-based).
    pub page: u32,
    /// How many pages the query has at this page size.
    pub total_pages: u32,
    /// How many rows the query has in all.
    pub total_items: u64,
}

/// One page of `GET /api/v1/employees`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmployeesPage {
    /// The employees of this page.
    pub employees: Vec<RawEmployee>,
    /// The cursor of the next page (`page[after]`), `None` on the last page.
    pub next_cursor: Option<String>,
}

/// What happened to an employee, per `GET /api/v1/employees/changed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeAction {
    /// Created since the timestamp.
    Inserted,
    /// Changed since the timestamp.
    Updated,
    /// Deleted since the timestamp.
    Deleted,
}

/// One entry of `GET /api/v1/employees/changed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedEmployee {
    /// The employee id.
    pub id: String,
    /// What happened.
    pub action: ChangeAction,
    /// When BambooHR last changed the employee, when it said (and it could be read).
    pub last_changed: Option<OffsetDateTime>,
}

fn json(body: &[u8], what: &str) -> Result<Value, BambooError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde_json's own message can quote the body; only its position is kept.
        let kind = match e.classify() {
            serde_json::error::Category::Eof => "ends early",
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Io | serde_json::error::Category::Data => "cannot be read",
        };
        BambooError::bad_response(format!(
            "{what}: body {kind} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, BambooError> {
    v.as_object()
        .ok_or_else(|| BambooError::bad_response(format!("{path} is not an object")))
}

fn array<'a>(v: Option<&'a Value>, path: &str) -> Result<&'a Vec<Value>, BambooError> {
    v.and_then(Value::as_array)
        .ok_or_else(|| BambooError::bad_response(format!("{path} is missing or not an array")))
}

fn unsigned(v: Option<&Value>, path: &str) -> Result<u64, BambooError> {
    v.and_then(Value::as_u64).ok_or_else(|| {
        BambooError::bad_response(format!("{path} is missing or not a non-negative integer"))
    })
}

/// An id sent as a string or a number, as a non-empty string.
fn employee_id(v: Option<&Value>, path: &str) -> Result<String, BambooError> {
    let id = match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    if id.is_empty() {
        return Err(BambooError::bad_response(format!(
            "{path} is missing or empty"
        )));
    }
    Ok(id)
}

fn restricted(v: Option<&Value>, path: &str) -> Result<Vec<String>, BambooError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| BambooError::bad_response(format!("{path} holds a non-string")))
            })
            .collect(),
        Some(_) => Err(BambooError::bad_response(format!("{path} is not an array"))),
    }
}

/// Parses a datasets v2 answer. Each row's `fields.employeeId` becomes the id; the other
/// fields stay in `fields`; `_restrictedFields` is read beside `fields` or inside it.
pub(crate) fn parse_dataset_page(body: &[u8]) -> Result<DatasetPage, BambooError> {
    let root = json(body, "dataset page")?;
    let root = object(&root, "body")?;
    let rows = array(root.get("data"), "data")?;
    let mut employees = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let row = object(row, &format!("data[{i}]"))?;
        let mut fields = object(
            row.get("fields").unwrap_or(&Value::Null),
            &format!("data[{i}].fields"),
        )?
        .clone();
        let id = employee_id(
            fields.remove("employeeId").as_ref(),
            &format!("data[{i}].fields.employeeId"),
        )?;
        let mut withheld = restricted(
            row.get(RESTRICTED_KEY),
            &format!("data[{i}].{RESTRICTED_KEY}"),
        )?;
        for name in restricted(
            fields.remove(RESTRICTED_KEY).as_ref(),
            &format!("data[{i}].fields.{RESTRICTED_KEY}"),
        )? {
            if !withheld.contains(&name) {
                withheld.push(name);
            }
        }
        // Datasets leave a withheld value out; the list endpoint sends it as null. Both
        // become null here, so callers see one shape and the restricted list says why.
        for name in &withheld {
            fields.entry(name.clone()).or_insert(Value::Null);
        }
        employees.push(RawEmployee {
            id,
            fields,
            restricted: withheld,
        });
    }
    let meta = object(root.get("meta").unwrap_or(&Value::Null), "meta")?;
    let to_u32 = |n: u64, path: &str| {
        u32::try_from(n).map_err(|_| BambooError::bad_response(format!("{path} is too large")))
    };
    Ok(DatasetPage {
        employees,
        page: to_u32(unsigned(meta.get("page"), "meta.page")?, "meta.page")?,
        total_pages: to_u32(
            unsigned(meta.get("totalPages"), "meta.totalPages")?,
            "meta.totalPages",
        )?,
        total_items: unsigned(meta.get("totalItems"), "meta.totalItems")?,
    })
}

/// Parses a list-employees answer: `data[]` records keyed by `employeeId` with
/// `_restrictedFields`, and `meta.page.nextCursor`.
pub(crate) fn parse_employees_page(body: &[u8]) -> Result<EmployeesPage, BambooError> {
    let root = json(body, "employee list")?;
    let root = object(&root, "body")?;
    let rows = array(root.get("data"), "data")?;
    let mut employees = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let mut fields = object(row, &format!("data[{i}]"))?.clone();
        let id = employee_id(
            fields.remove("employeeId").as_ref(),
            &format!("data[{i}].employeeId"),
        )?;
        let withheld = restricted(
            fields.remove(RESTRICTED_KEY).as_ref(),
            &format!("data[{i}].{RESTRICTED_KEY}"),
        )?;
        employees.push(RawEmployee {
            id,
            fields,
            restricted: withheld,
        });
    }
    let meta = object(root.get("meta").unwrap_or(&Value::Null), "meta")?;
    let next_cursor = match meta.get("page").and_then(|p| p.get("nextCursor")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(BambooError::bad_response(
                "meta.page.nextCursor is not a string",
            ))
        }
    };
    Ok(EmployeesPage {
        employees,
        next_cursor,
    })
}

/// Parses a changed-employees answer: `employees` maps ids to `{id, action, lastChanged}`
/// (an empty result may come as `[]`). Entries are sorted by id for a stable order.
pub(crate) fn parse_changed(body: &[u8]) -> Result<Vec<ChangedEmployee>, BambooError> {
    let root = json(body, "changed employees")?;
    let root = object(&root, "body")?;
    let entries: Vec<(String, &Value)> = match root.get("employees") {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(items)) if items.is_empty() => Vec::new(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(BambooError::bad_response(
                "employees is not an object of employee ids",
            ))
        }
    };
    let mut changed = Vec::with_capacity(entries.len());
    for (key, entry) in entries {
        let path = format!("employees[{key}]");
        let entry = object(entry, &path)?;
        let id = match entry.get("id") {
            None | Some(Value::Null) => employee_id(Some(&Value::String(key)), &path)?,
            v => employee_id(v, &format!("{path}.id"))?,
        };
        let action = match entry.get("action").and_then(Value::as_str) {
            Some(a) if a.eq_ignore_ascii_case("inserted") => ChangeAction::Inserted,
            Some(a) if a.eq_ignore_ascii_case("updated") => ChangeAction::Updated,
            Some(a) if a.eq_ignore_ascii_case("deleted") => ChangeAction::Deleted,
            _ => {
                return Err(BambooError::bad_response(format!(
                    "{path}.action is missing or not Inserted, Updated or Deleted"
                )))
            }
        };
        let last_changed = entry
            .get("lastChanged")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
        changed.push(ChangedEmployee {
            id,
            action,
            last_changed,
        });
    }
    changed.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(changed)
}

/// Parses a get-employee answer. BambooHR omits fields the caller may not see, so every
/// requested field missing from the answer is listed as restricted: absence is never read
/// as "cleared".
pub(crate) fn parse_employee(body: &[u8], requested: &[&str]) -> Result<RawEmployee, BambooError> {
    let root = json(body, "employee")?;
    let mut fields = object(&root, "body")?.clone();
    let id = employee_id(fields.remove("id").as_ref(), "id")?;
    let restricted = requested
        .iter()
        .filter(|name| **name != "id" && !fields.contains_key(**name))
        .map(|name| name.to_string())
        .collect();
    Ok(RawEmployee {
        id,
        fields,
        restricted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_dataset_row_is_keyed_by_its_employee_id_and_keeps_the_other_fields() {
        let body = json!({
            "data": [{"fields": {"employeeId": "7", "firstName": "Ada", "homeEmail": null},
                      "_restrictedFields": ["homeEmail"]}],
            "links": {"next": null, "prev": null},
            "meta": {"page": 1, "pageSize": 100, "totalPages": 1, "totalItems": 1}
        });
        let page = parse_dataset_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(page.employees.len(), 1);
        let e = &page.employees[0];
        assert_eq!(e.id, "7");
        assert!(!e.fields.contains_key("employeeId"));
        assert_eq!(e.fields["firstName"], json!("Ada"));
        assert_eq!(e.restricted, vec!["homeEmail".to_string()]);
        assert_eq!((page.page, page.total_pages, page.total_items), (1, 1, 1));
    }

    #[test]
    fn a_dataset_row_without_an_employee_id_is_a_bad_response() {
        let body = json!({"data": [{"fields": {"firstName": "Ada"}}],
                          "meta": {"page": 1, "totalPages": 1, "totalItems": 1}});
        let err = parse_dataset_page(body.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, BambooError::BadResponse { .. }));
        assert!(err.to_string().contains("data[0].fields.employeeId"));
    }

    #[test]
    fn a_truncated_body_is_a_bad_response_that_does_not_quote_the_body() {
        let body = br#"{"data": [{"fields": {"employeeId": "7", "firstName": "Secretname"#;
        let err = parse_dataset_page(body).unwrap_err();
        assert!(matches!(err, BambooError::BadResponse { .. }));
        assert!(!err.to_string().contains("Secretname"));
    }

    #[test]
    fn the_list_cursor_is_read_from_meta_page() {
        let body = json!({
            "data": [{"employeeId": "1", "firstName": "A", "_restrictedFields": []}],
            "meta": {"total": 2, "page": {"limit": 1, "nextCursor": "abc", "prevCursor": null}},
            "_links": {}
        });
        let page = parse_employees_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(page.next_cursor.as_deref(), Some("abc"));
        assert_eq!(page.employees[0].id, "1");
        assert!(!page.employees[0].fields.contains_key(RESTRICTED_KEY));
    }

    #[test]
    fn changed_employees_are_read_from_the_id_map_and_an_empty_list() {
        let body = json!({"latest": "2026-01-02T03:04:05+00:00", "employees": {
            "5": {"id": "5", "action": "Deleted", "lastChanged": "2026-01-02T03:04:05+00:00"},
            "3": {"id": "3", "action": "Inserted", "lastChanged": "2026-01-01T00:00:00Z"}
        }});
        let changed = parse_changed(body.to_string().as_bytes()).unwrap();
        assert_eq!(changed.len(), 2);
        assert_eq!(changed[0].id, "3");
        assert_eq!(changed[0].action, ChangeAction::Inserted);
        assert_eq!(changed[1].action, ChangeAction::Deleted);
        assert!(changed[1].last_changed.is_some());
        let empty = parse_changed(br#"{"latest": null, "employees": []}"#).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn fields_missing_from_get_employee_are_treated_as_restricted() {
        let body = br#"{"id": "9", "firstName": "Ada"}"#;
        let e = parse_employee(body, &["firstName", "homeEmail"]).unwrap();
        assert_eq!(e.id, "9");
        assert_eq!(e.restricted, vec!["homeEmail".to_string()]);
    }

    #[test]
    fn debug_output_of_an_employee_shows_field_names_but_not_values() {
        let e = parse_employee(br#"{"id": "9", "firstName": "Ada"}"#, &[]).unwrap();
        let shown = format!("{e:?}");
        assert!(shown.contains("firstName"));
        assert!(!shown.contains("Ada"));
    }
}
