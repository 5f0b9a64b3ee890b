//! BambooHR's webhooks API (`/api/v1/webhooks`): create (returning the `privateKey` once),
//! list, get, update and delete, the monitorable fields, with BambooHR's validation of `format`, `url` and `monitorFields`.
//! Registered webhooks are kept in the company's state.

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::Simulator;

/// One registered webhook.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) format: String,
    pub(crate) monitor_fields: Option<Vec<String>>,
    pub(crate) post_fields: serde_json::Map<String, Value>,
    pub(crate) events: Vec<String>,
    pub(crate) include_company_domain: bool,
    pub(crate) private_key: String,
    pub(crate) created: OffsetDateTime,
    pub(crate) last_sent: Option<OffsetDateTime>,
}

const DEFAULT_EVENTS: [&str; 3] = [
    "employee_with_fields.updated",
    "employee_with_fields.deleted",
    "employee_with_fields.created",
];

const EVENTS: [&str; 9] = [
    "employee_with_fields.updated",
    "employee_with_fields.created",
    "employee_with_fields.deleted",
    "company-integrations.updated",
    "employee.created",
    "employee.updated",
    "employee.deleted",
    "company.updated",
    "company.deleted",
];

/// `YYYY-MM-DD HH:MM:SS` in UTC, BambooHR's webhook datetime format.
fn datetime(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn errors(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        json!({ "errors": [{ "error": message }] }).to_string(),
    )
        .into_response()
}

fn bad_request(issues: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, "application/json")],
        json!({ "errors": [{ "error": "Invalid webhook", "issues": issues }] }).to_string(),
    )
        .into_response()
}

/// BambooHR requires `https://`; plain HTTP is accepted for loopback only, so tests and
/// the local stack can receive webhooks without TLS.
fn acceptable_url(url: &str) -> bool {
    url.starts_with("https://")
        || url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
}

/// A webhook definition as create and update take it, validated as BambooHR does
/// (400 with the issues, 403 naming monitor fields the company does not have).
struct Definition {
    name: String,
    url: String,
    format: String,
    monitor_fields: Option<Vec<String>>,
    post_fields: serde_json::Map<String, Value>,
    events: Vec<String>,
    include_company_domain: bool,
}

fn parse_definition(sim: &Simulator, body: &[u8]) -> Result<Definition, Box<Response>> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(bad_request(vec![
            "The body must be a JSON object.".into(),
        ])));
    };
    let text = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
    let mut issues = Vec::new();
    let name = text("name").filter(|n| !n.trim().is_empty());
    if name.is_none() {
        issues.push("`name` is required.".to_string());
    }
    let url = text("url").filter(|u| acceptable_url(u));
    if url.is_none() {
        issues.push("`url` must begin with https://.".to_string());
    }
    let format = text("format").filter(|f| f == "json" || f == "form-encoded");
    if format.is_none() {
        issues.push("`format` must be json or form-encoded.".to_string());
    }
    let events: Vec<String> = match req.get("events") {
        None | Some(Value::Null) => DEFAULT_EVENTS.iter().map(|e| e.to_string()).collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(_) => {
            issues.push("`events` must be an array.".to_string());
            Vec::new()
        }
    };
    if events.iter().any(|e| !EVENTS.contains(&e.as_str())) {
        issues.push("`events` has an unknown event type.".to_string());
    }
    let with_fields = events
        .iter()
        .any(|e| e.starts_with("employee_with_fields."));
    let plain = events.iter().any(|e| e.starts_with("employee."));
    if with_fields && plain {
        issues.push("employee_with_fields events cannot be mixed with employee events.".into());
    }
    let monitor: Option<Vec<String>> =
        req.get("monitorFields").and_then(Value::as_array).map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    let needs_monitor = events
        .iter()
        .any(|e| e == "employee.updated" || e == "employee_with_fields.updated");
    if needs_monitor && monitor.as_ref().is_none_or(Vec::is_empty) {
        issues.push("`monitorFields` is required for update events.".to_string());
    }
    let post_fields = match req.get("postFields") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            issues.push("`postFields` must be an object.".to_string());
            serde_json::Map::new()
        }
    };
    if !issues.is_empty() {
        return Err(Box::new(bad_request(issues)));
    }
    // Monitor fields are named by id or alias, as `monitor_fields` lists them.
    let known: std::collections::BTreeSet<String> = crate::meta::monitorable(sim)
        .into_iter()
        .flat_map(|(id, _, alias)| [Some(id), alias])
        .flatten()
        .collect();
    let unknown: Vec<&String> = monitor
        .iter()
        .flatten()
        .filter(|f| !known.contains(*f))
        .collect();
    if !unknown.is_empty() {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                [(CONTENT_TYPE, "application/json")],
                json!({ "errors": [{ "error": "Field permission violation",
                                 "monitorFields": [], "postFields": [],
                                 "unknownFields": unknown }] })
                .to_string(),
            )
                .into_response(),
        ));
    }
    Ok(Definition {
        name: name.unwrap_or_default(),
        url: url.unwrap_or_default(),
        format: format.unwrap_or_default(),
        monitor_fields: monitor,
        post_fields,
        events,
        include_company_domain: req
            .get("includeCompanyDomain")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// `POST /api/v1/webhooks`.
pub(crate) async fn create(AxState(sim): AxState<Simulator>, body: Bytes) -> Response {
    let d = match parse_definition(&sim, &body) {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let registered = Registered {
        name: d.name,
        url: d.url,
        format: d.format,
        monitor_fields: d.monitor_fields,
        post_fields: d.post_fields,
        events: d.events,
        include_company_domain: d.include_company_domain,
        private_key: crate::oauth::new_token("whk"),
        created: crate::clock::now(),
        last_sent: None,
    };
    let mut s = sim.lock();
    s.next_webhook_id += 1;
    let id = s.next_webhook_id;
    let mut body = full(id, &registered);
    body["privateKey"] = Value::String(registered.private_key.clone());
    s.webhooks.insert(id, registered);
    (
        StatusCode::CREATED,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `PUT /api/v1/webhooks/{id}`: a full replacement of the definition; the private key
/// is not regenerated.
pub(crate) async fn update(
    AxState(sim): AxState<Simulator>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let d = match parse_definition(&sim, &body) {
        Ok(d) => d,
        Err(refused) => return *refused,
    };
    let mut s = sim.lock();
    let Some((k, w)) = id
        .parse::<u64>()
        .ok()
        .and_then(|k| Some((k, s.webhooks.get_mut(&k)?)))
    else {
        return errors(
            StatusCode::NOT_FOUND,
            &format!("No webhook was found with ID: {id}."),
        );
    };
    w.name = d.name;
    w.url = d.url;
    w.format = d.format;
    w.monitor_fields = d.monitor_fields;
    w.post_fields = d.post_fields;
    w.events = d.events;
    w.include_company_domain = d.include_company_domain;
    axum::Json(full(k, w)).into_response()
}

/// `GET /api/v1/webhooks/monitor_fields`.
pub(crate) async fn monitor_fields(AxState(sim): AxState<Simulator>) -> Response {
    let fields: Vec<Value> = crate::meta::monitorable(&sim)
        .into_iter()
        .map(|(id, name, alias)| json!({"id": id, "name": name, "alias": alias}))
        .collect();
    axum::Json(json!({ "fields": fields })).into_response()
}

fn full(id: u64, w: &Registered) -> Value {
    json!({
        "id": id.to_string(),
        "name": w.name,
        "created": datetime(w.created),
        "lastSent": w.last_sent.map(datetime),
        "monitorFields": w.monitor_fields,
        "postFields": w.post_fields,
        "url": w.url,
        "format": w.format,
        "includeCompanyDomain": w.include_company_domain,
        "events": w.events,
    })
}

/// `GET /api/v1/webhooks`.
pub(crate) async fn list(AxState(sim): AxState<Simulator>) -> Response {
    let s = sim.lock();
    let hooks: Vec<Value> = s
        .webhooks
        .iter()
        .map(|(id, w)| {
            json!({
                "id": id.to_string(),
                "name": w.name,
                "created": datetime(w.created),
                "lastSent": w.last_sent.map(datetime),
                "url": w.url,
            })
        })
        .collect();
    axum::Json(json!({ "webhooks": hooks })).into_response()
}

/// `GET /api/v1/webhooks/{id}`.
pub(crate) async fn get(AxState(sim): AxState<Simulator>, Path(id): Path<String>) -> Response {
    let s = sim.lock();
    match id
        .parse::<u64>()
        .ok()
        .and_then(|k| Some((k, s.webhooks.get(&k)?)))
    {
        Some((k, w)) => axum::Json(full(k, w)).into_response(),
        None => errors(
            StatusCode::NOT_FOUND,
            &format!("No webhook was found with ID: {id}."),
        ),
    }
}

/// `DELETE /api/v1/webhooks/{id}`: a plain-text confirmation, as BambooHR answers.
pub(crate) async fn delete(AxState(sim): AxState<Simulator>, Path(id): Path<String>) -> Response {
    let removed = id
        .parse::<u64>()
        .ok()
        .and_then(|k| sim.lock().webhooks.remove(&k));
    match removed {
        Some(_) => (
            StatusCode::OK,
            [(CONTENT_TYPE, "text/plain")],
            "Web hook has been deleted.",
        )
            .into_response(),
        None => errors(
            StatusCode::NOT_FOUND,
            &format!("No webhook was found with ID: {id}."),
        ),
    }
}
