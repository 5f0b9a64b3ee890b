//! Account metadata and the directory, shaped as BambooHR's OpenAPI has them: the field
//! list (`GET /api/v1/meta/fields`, to discover custom fields and their names), the list
//! fields with their options (`GET /api/v1/meta/lists`), and the employee directory
//! (`GET /api/v1/employees/directory`), the read of last resort for a key that may not
//! use the other endpoints.

use std::collections::BTreeSet;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::employee::Field;
use crate::{Simulator, LITMOS_ACCESS};

/// Standard fields BambooHR types as lists (options in `meta/lists`).
const LIST_FIELDS: [Field; 4] = [
    Field::Department,
    Field::Division,
    Field::Location,
    Field::EmploymentStatus,
];

/// Custom fields get ids from here up, as BambooHR numbers them after the standard ones.
const CUSTOM_ID_BASE: usize = 4000;

fn field_type(field: &Field) -> &'static str {
    match field {
        Field::HireDate | Field::TerminationDate => "date",
        Field::WorkEmail | Field::HomeEmail => "email",
        Field::SupervisorEId => "employee",
        Field::Status => "status",
        Field::Custom(name) if name == LITMOS_ACCESS => "checkbox",
        f if LIST_FIELDS.contains(f) => "list",
        _ => "text",
    }
}

/// The company's fields: the standard ones with their aliases (the names get-employee
/// takes), then the custom ones.
fn fields(custom: &BTreeSet<String>) -> Vec<(String, Field)> {
    let standard = Field::standard().filter(|f| !matches!(f, Field::Unmodeled | Field::EmployeeId));
    let mut out: Vec<(String, Field)> = standard
        .enumerate()
        .map(|(i, f)| ((i + 1).to_string(), f))
        .collect();
    out.extend(
        custom
            .iter()
            .enumerate()
            .map(|(i, c)| ((CUSTOM_ID_BASE + i).to_string(), Field::Custom(c.clone()))),
    );
    out
}

/// The fields a webhook may monitor: (id, name, alias) of every field of the company.
pub(crate) fn monitorable(sim: &Simulator) -> Vec<(String, String, Option<String>)> {
    let s = sim.lock();
    fields(&s.custom_fields)
        .into_iter()
        // Aliases as `meta/fields` gives them.
        .map(|(id, f)| (id, f.display_name(), Some(f.key())))
        .collect()
}

/// `GET /api/v1/meta/fields`.
pub(crate) async fn meta_fields(AxState(sim): AxState<Simulator>) -> Response {
    let s = sim.lock();
    let list: Vec<Value> = fields(&s.custom_fields)
        .into_iter()
        .map(|(id, f)| {
            json!({
                "id": id,
                "name": f.display_name(),
                "type": field_type(&f),
                "alias": f.key(),
            })
        })
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

/// `GET /api/v1/meta/lists`: each list field with the values employees hold as options.
pub(crate) async fn meta_lists(AxState(sim): AxState<Simulator>) -> Response {
    let s = sim.lock();
    let all = fields(&s.custom_fields);
    let mut lists = Vec::new();
    for (id, field) in all.iter().filter(|(_, f)| field_type(f) == "list") {
        let values: BTreeSet<String> = s
            .employees
            .values()
            .filter(|e| !e.deleted)
            .filter_map(|e| e.value(field, None))
            .collect();
        let options: Vec<Value> = values
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                json!({
                    "id": i + 1,
                    "name": name,
                    "archived": "no",
                    "createdDate": null,
                    "archivedDate": null,
                })
            })
            .collect();
        lists.push(json!({
            "fieldId": id,
            "name": field.display_name(),
            "alias": field.key(),
            "manageable": "yes",
            "multiple": "no",
            "options": options,
        }));
    }
    axum::Json(Value::Array(lists)).into_response()
}

/// The directory's columns: (key, type, display name, field).
const DIRECTORY: [(&str, &str, &str, Field); 9] = [
    ("displayName", "text", "Display name", Field::DisplayName),
    ("firstName", "text", "First name", Field::FirstName),
    ("lastName", "text", "Last name", Field::LastName),
    (
        "preferredName",
        "text",
        "Preferred name",
        Field::PreferredName,
    ),
    ("jobTitle", "list", "Job title", Field::JobTitle),
    ("workEmail", "email", "Work Email", Field::WorkEmail),
    ("department", "list", "Department", Field::Department),
    ("location", "list", "Location", Field::Location),
    ("division", "list", "Division", Field::Division),
];

/// `GET /api/v1/employees/directory`: active employees only, as BambooHR documents;
/// 404 when none matched.
pub(crate) async fn directory(AxState(sim): AxState<Simulator>) -> Response {
    let s = sim.lock();
    let employees: Vec<Value> = s
        .employees
        .values()
        .filter(|e| !e.deleted && e.value(&Field::Status, None).as_deref() == Some("Active"))
        .map(|e| {
            let mut row = serde_json::Map::new();
            row.insert("id".into(), Value::String(e.employee_id.clone()));
            for (key, _, _, field) in &DIRECTORY {
                let v = if s.restricted.contains(field) {
                    None
                } else {
                    e.value(field, None)
                };
                row.insert((*key).into(), v.map(Value::String).unwrap_or(Value::Null));
            }
            row.insert("canUploadPhoto".into(), json!(0));
            Value::Object(row)
        })
        .collect();
    if employees.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let fields: Vec<Value> = DIRECTORY
        .iter()
        .map(|(id, ty, name, _)| json!({ "id": id, "type": ty, "name": name }))
        .collect();
    axum::Json(json!({ "fields": fields, "employees": employees })).into_response()
}
