//! Training, shaped as BambooHR's OpenAPI has it: the company's training types
//! (`GET /api/v1/training/type`, an object keyed by type id) and an employee's
//! completed trainings (`GET /api/v1/training/record/employee/{id}`, an object keyed
//! by record id, or `[]` when there is none; `?type=` narrows to one type). A company
//! starts with none; tests add them. Access can be denied: both endpoints then answer
//! 403, as for a key whose owner lacks access to training.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use time::Date;

use crate::respond::json_response;
use crate::Simulator;

/// A training type as a test defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimTrainingType {
    /// Its name.
    pub name: String,
    /// Whether it is required.
    pub required: bool,
    /// Days from the hire date a new hire has to complete it (required ones only).
    pub due_from_hire_days: Option<u32>,
    /// Whether it is renewed every `frequency_months`.
    pub renewable: bool,
    /// Months between renewals.
    pub frequency_months: Option<u32>,
}

#[derive(Debug, Clone)]
struct SimTrainingRecord {
    employee_id: u64,
    type_id: u64,
    completed: Date,
}

/// The company's training data.
#[derive(Debug, Default)]
pub(crate) struct TrainingBook {
    types: BTreeMap<u64, SimTrainingType>,
    records: BTreeMap<u64, SimTrainingRecord>,
    next_type: u64,
    next_record: u64,
    /// While true, the training endpoints answer 403.
    denied: bool,
}

impl TrainingBook {
    pub(crate) fn add_type(&mut self, t: SimTrainingType) -> u64 {
        self.next_type += 1;
        self.types.insert(self.next_type, t);
        self.next_type
    }

    pub(crate) fn add_record(&mut self, employee_id: u64, type_id: u64, completed: Date) -> u64 {
        self.next_record += 1;
        self.records.insert(
            self.next_record,
            SimTrainingRecord {
                employee_id,
                type_id,
                completed,
            },
        );
        self.next_record
    }

    pub(crate) fn deny(&mut self, denied: bool) {
        self.denied = denied;
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "{}",
    )
        .into_response()
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `GET /api/v1/training/type`.
pub(crate) async fn list_types(AxState(sim): AxState<Simulator>) -> Response {
    let s = sim.lock();
    if s.training.denied {
        return forbidden();
    }
    let mut out = Map::new();
    for (id, t) in &s.training.types {
        let mut v = json!({
            "id": id,
            "name": t.name,
            "renewable": t.renewable,
            "required": t.required,
            "category": [],
            "linkUrl": null,
            "description": null,
            "allowEmployeesToMarkComplete": false,
        });
        if t.renewable {
            v["frequency"] = json!(t.frequency_months.unwrap_or(12));
        }
        if let (true, Some(days)) = (t.required, t.due_from_hire_days) {
            v["dueFromHireDate"] = json!(days);
        }
        out.insert(id.to_string(), v);
    }
    json_response(Value::Object(out))
}

/// `GET /api/v1/training/record/employee/{employeeId}`.
pub(crate) async fn list_records(
    AxState(sim): AxState<Simulator>,
    Path(employee): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let s = sim.lock();
    if s.training.denied {
        return forbidden();
    }
    let Ok(employee_id) = employee.trim().parse::<u64>() else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if s.live(&employee).is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let only = match params.iter().find(|(k, _)| k == "type") {
        Some((_, v)) => match v.trim().parse::<u64>() {
            Ok(t) => Some(t),
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        },
        None => None,
    };
    let mut out = Map::new();
    for (id, r) in &s.training.records {
        if r.employee_id != employee_id || only.is_some_and(|t| t != r.type_id) {
            continue;
        }
        out.insert(
            id.to_string(),
            json!({
                "id": id,
                "employeeId": r.employee_id.to_string(),
                "completed": ymd(r.completed),
                "notes": null,
                "instructor": null,
                "credits": null,
                "hours": null,
                "cost": null,
                "type": r.type_id.to_string(),
            }),
        );
    }
    if out.is_empty() {
        // BambooHR answers an empty array, not an empty object, when there is none.
        return json_response(json!([]));
    }
    json_response(Value::Object(out))
}
