//! The `/_sim/...` control API, for the dev stack and subprocess tests: the same
//! operations as the [`Simulator`] methods, over JSON. Not counted, not faulted, not
//! authenticated (the simulator binds to loopback).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::employee::parse_date;
use crate::{deliver, FaultPlan, SimEmployee, SimError, Simulator};

pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/_sim/employees", get(list).post(hire))
        .route(
            "/_sim/employees/{id}",
            get(one).patch(update).delete(delete),
        )
        .route("/_sim/employees/{id}/terminate", post(terminate))
        .route("/_sim/employees/{id}/rehire", post(rehire))
        .route("/_sim/requests", get(requests))
        .route("/_sim/faults", post(inject).delete(clear_faults))
        .route("/_sim/tokens", post(add_token))
        .route("/_sim/webhooks/field-based", post(field_based))
        .with_state(sim)
}

fn error(e: SimError) -> Response {
    let status = match e {
        SimError::UnknownEmployee { .. } => StatusCode::NOT_FOUND,
        SimError::InvalidValue { .. } | SimError::CompanyFile { .. } => StatusCode::BAD_REQUEST,
        SimError::Delivery { .. } => StatusCode::BAD_GATEWAY,
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

/// After a mutation, push the employee to the configured webhook receiver, in the
/// background, retried on the target's schedule, and fire the registered webhooks the
/// change triggers.
fn push(sim: &Simulator, id: &str) {
    let sim = sim.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        let schedule = sim.webhook_target().map(|t| t.schedule).unwrap_or_default();
        sim.send_webhook_for(&id).await;
        sim.fire_registered_webhooks(&id, schedule).await;
    });
}

async fn list(State(sim): State<Simulator>) -> Json<Vec<SimEmployee>> {
    Json(sim.employees())
}

async fn one(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    match sim.employee(&id) {
        Some(e) => Json(e).into_response(),
        None => error(SimError::UnknownEmployee { id }),
    }
}

async fn hire(State(sim): State<Simulator>, Json(e): Json<SimEmployee>) -> Response {
    let id = sim.hire(e);
    push(&sim, &id);
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

async fn update(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(changes): Json<BTreeMap<String, Option<String>>>,
) -> Response {
    match sim.try_update(&id, changes) {
        Ok(()) => {
            push(&sim, &id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
struct DateBody {
    date: String,
}

fn date(body: &DateBody) -> Result<time::Date, SimError> {
    parse_date(&body.date).ok_or_else(|| SimError::InvalidValue {
        field: "date".into(),
        reason: "is not a YYYY-MM-DD date".into(),
    })
}

async fn terminate(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(body): Json<DateBody>,
) -> Response {
    match date(&body).and_then(|d| sim.try_terminate(&id, d)) {
        Ok(()) => {
            push(&sim, &id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(e),
    }
}

async fn rehire(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(body): Json<DateBody>,
) -> Response {
    match date(&body).and_then(|d| sim.try_rehire(&id, d)) {
        Ok(()) => {
            push(&sim, &id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(e),
    }
}

async fn delete(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    match sim.try_delete(&id) {
        Ok(()) => {
            push(&sim, &id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error(e),
    }
}

async fn requests(State(sim): State<Simulator>) -> Json<serde_json::Value> {
    Json(json!({ "count": sim.request_count() }))
}

async fn inject(State(sim): State<Simulator>, Json(plan): Json<FaultPlan>) -> StatusCode {
    sim.inject(plan);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn add_token(State(sim): State<Simulator>, Json(body): Json<TokenBody>) -> StatusCode {
    sim.add_bearer_token(&body.token);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct WebhookRequest {
    ids: Vec<String>,
    fields: Vec<String>,
    /// Signing key (UTF-8); defaults to the configured webhook key.
    #[serde(default)]
    key: Option<String>,
    /// Also POST it to this URL (or the configured webhook URL when `true` is given as
    /// `deliver`).
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    deliver: bool,
}

async fn field_based(State(sim): State<Simulator>, Json(req): Json<WebhookRequest>) -> Response {
    let target = sim.webhook_target();
    let key = match (&req.key, &target) {
        (Some(k), _) => k.as_bytes().to_vec(),
        (None, Some(t)) => t.key.clone(),
        (None, None) => {
            return error(SimError::InvalidValue {
                field: "key".into(),
                reason: "no key given and no webhook key configured".into(),
            })
        }
    };
    let refs: Vec<&str> = req.fields.iter().map(String::as_str).collect();
    let webhook = sim.field_based_webhook(&req.ids, &refs, &key);
    let url = req
        .url
        .clone()
        .or_else(|| req.deliver.then(|| target.map(|t| t.url)).flatten());
    let status = match url {
        Some(url) => match deliver(&url, &webhook).await {
            Ok(status) => Some(status),
            Err(e) => return error(e),
        },
        None => None,
    };
    let headers: BTreeMap<&str, &str> = webhook
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Json(json!({
        "body": String::from_utf8_lossy(&webhook.body),
        "headers": headers,
        "status": status,
    }))
    .into_response()
}
