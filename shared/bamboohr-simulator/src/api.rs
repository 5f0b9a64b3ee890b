//! The BambooHR API surface, shaped like BambooHR's OpenAPI: datasets v2 (employee),
//! list employees (cursor pages, `filter[...]`, `_restrictedFields`), changed employees
//! and get employee, behind HTTP Basic (API key, any password) or bearer auth, with the
//! fault layer in front.

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State as AxState};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::employee::{format_timestamp, Field, SimEmployee};
use crate::faults::{ConnHandle, Fault, RetryAfter};
use crate::state::State;
use crate::Simulator;

/// The largest datasets v2 page.
pub(crate) const MAX_PAGE_SIZE: u64 = 1000;
/// get-employee refuses more fields than this.
pub(crate) const MAX_GET_FIELDS: usize = 400;

/// Counts the request, applies a due fault, checks credentials, then runs the handler.
pub(crate) async fn gate(AxState(sim): AxState<Simulator>, req: Request, next: Next) -> Response {
    let (fault, authorized) = {
        let mut s = sim.lock();
        s.requests += 1;
        let fault = s.faults.next();
        (fault, authorized(&s, req.headers()))
    };
    let mut truncate = false;
    match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            tracing::debug!(status, "fault: status");
            return fault_status(status, retry_after);
        }
        Some(Fault::Delay { millis }) => {
            tracing::debug!(millis, "fault: delay");
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        }
        Some(Fault::DropConnection) => {
            tracing::debug!("fault: drop connection");
            return match req.extensions().get::<ConnectInfo<ConnHandle>>() {
                Some(ConnectInfo(conn)) => {
                    conn.kill();
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
                // Without the simulator's own listener there is no socket to drop.
                None => StatusCode::BAD_GATEWAY.into_response(),
            };
        }
        Some(Fault::TruncateBody) => truncate = true,
        None => {}
    }
    if !authorized {
        return unauthorized();
    }
    let response = next.run(req).await;
    if truncate {
        return truncated(response).await;
    }
    response
}

pub(crate) fn authorized(s: &State, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (scheme, credential) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        // BambooHR takes the API key as the user name; the password is ignored ("x").
        STANDARD
            .decode(credential)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|pair| pair.split_once(':').map(|(user, _)| user.to_string()))
            .is_some_and(|user| !user.is_empty() && user == s.cfg.api_key)
    } else if scheme.eq_ignore_ascii_case("bearer") {
        s.bearer_tokens.contains(credential)
    } else {
        false
    }
}

pub(crate) fn unauthorized() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        [(CONTENT_TYPE, "application/json")],
        json!({"error": {"code": "Unauthorized", "message": "Unauthorized."}}).to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        "WWW-Authenticate",
        HeaderValue::from_static("Basic realm=\"BambooHR\""),
    );
    h.insert(
        "X-BambooHR-Message",
        HeaderValue::from_static("Invalid API key or token"),
    );
    r
}

pub(crate) fn fault_status(status: u16, retry_after: Option<RetryAfter>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "NotFound",
        _ => "Error",
    };
    let message = status.canonical_reason().unwrap_or("Error");
    let mut r = (
        status,
        [(CONTENT_TYPE, "application/json")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response();
    if let Some(value) = retry_after.and_then(|ra| retry_after_value(ra).ok()) {
        r.headers_mut().insert(RETRY_AFTER, value);
    }
    r
}

pub(crate) fn retry_after_value(ra: RetryAfter) -> Result<HeaderValue, ()> {
    let text = match ra {
        RetryAfter::Seconds(s) => s.to_string(),
        RetryAfter::HttpDateIn(s) => {
            // Rounded up to the second, so the date is never earlier than asked.
            let secs = i64::try_from(s).map_err(|_| ())?;
            let at = OffsetDateTime::now_utc() + time::Duration::seconds(secs);
            let at = if at.nanosecond() > 0 {
                at.replace_nanosecond(0).map_err(|_| ())? + time::Duration::SECOND
            } else {
                at
            };
            at.format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .map_err(|_| ())?
        }
    };
    HeaderValue::from_str(&text).map_err(|_| ())
}

async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

pub(crate) fn problem(
    status: StatusCode,
    code: &str,
    detail: &str,
    fields: Option<Value>,
) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    if let Some(f) = fields {
        body["fields"] = f;
    }
    (
        status,
        [(CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Employee API errors: `{"error": {"code", "message"}}` (Employee-StringCodeErrorResponse-V1).
pub(crate) fn employee_error(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(CONTENT_TYPE, "application/json")],
        json!({"error": {"code": code, "message": message}}).to_string(),
    )
        .into_response()
}

pub(crate) use crate::respond::json_response;

pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn xml_response(xml: String) -> Response {
    (StatusCode::OK, [(CONTENT_TYPE, "application/xml")], xml).into_response()
}

pub(crate) fn value_or_null(v: Option<String>) -> Value {
    v.map(Value::String).unwrap_or(Value::Null)
}

/// `POST /api/v2/datasets/{datasetName}/data`.
pub(crate) async fn dataset_data(
    AxState(sim): AxState<Simulator>,
    Path(dataset): Path<String>,
    body: Bytes,
) -> Response {
    if dataset != "employee" {
        return problem(
            StatusCode::NOT_FOUND,
            "DATASET_NOT_FOUND",
            "The specified dataset does not exist or is not accessible.",
            None,
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "The request body is not valid JSON.",
            None,
        );
    };
    let Some(names) = request.get("fields").and_then(Value::as_array) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "`fields` is required.",
            None,
        );
    };
    let names: Option<Vec<String>> = names
        .iter()
        .map(|n| n.as_str().map(str::to_string))
        .collect();
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "`fields` must be a non-empty array of field names.",
            None,
        );
    };
    let filter = match request.get("filter") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(f)) if f.trim().is_empty() => Vec::new(),
        Some(Value::String(f)) => match crate::odata::parse(f) {
            Some(clauses) => clauses,
            None => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNSUPPORTED",
                    "The simulator evaluates `eq`, `ne` and `in` joined by `and` only.",
                    None,
                )
            }
        },
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "`filter` must be a string.",
                None,
            )
        }
    };
    match request.get("orderBy") {
        None | Some(Value::Null) => {}
        Some(Value::String(o)) if o.trim().is_empty() => {}
        Some(_) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNSUPPORTED",
                "`orderBy` is not supported by the simulator.",
                None,
            )
        }
    }
    let page = match request.get("page") {
        None | Some(Value::Null) => Some(1),
        Some(v) => v.as_u64().filter(|p| *p >= 1),
    };
    let page_size = match request.get("pageSize") {
        None | Some(Value::Null) => Some(100),
        Some(v) => v.as_u64().filter(|p| (1..=MAX_PAGE_SIZE).contains(p)),
    };
    let (Some(page), Some(page_size)) = (page, page_size) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_PAGINATION",
            "`page` must be at least 1 and `pageSize` 1 to 1000.",
            None,
        );
    };

    let s = sim.lock();
    let mut fields = Vec::with_capacity(names.len());
    let mut unknown = Map::new();
    for name in &names {
        match Field::from_dataset_name(name) {
            Some(f) => fields.push(f),
            None if s.custom_fields.contains(name) => fields.push(Field::Custom(name.clone())),
            None => {
                unknown.insert(name.clone(), Value::String("Unknown field.".into()));
            }
        }
    }
    if !unknown.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELDS",
            "One or more requested fields do not exist in this dataset.",
            Some(Value::Object(unknown)),
        );
    }
    let mut tests = Vec::with_capacity(filter.len());
    for clause in &filter {
        let field = match Field::from_dataset_name(clause.field()) {
            Some(f) => f,
            None if s.custom_fields.contains(clause.field()) => {
                Field::Custom(clause.field().to_string())
            }
            None => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELDS",
                    "The filter names a field that does not exist in this dataset.",
                    Some(json!({ clause.field(): "Unknown field." })),
                )
            }
        };
        tests.push((clause, field));
    }
    let live: Vec<&SimEmployee> = s
        .employees
        .values()
        .filter(|e| !e.deleted)
        .filter(|e| {
            let manager = s.manager_of(e);
            tests
                .iter()
                .all(|(c, f)| c.accepts(e.value(f, manager).as_deref()))
        })
        .collect();
    let total_items = live.len() as u64;
    let total_pages = total_items.div_ceil(page_size);
    let start = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let rows: Vec<Value> = live
        .iter()
        .skip(start)
        .take(page_size as usize)
        .map(|e| {
            let manager = s.manager_of(e);
            let mut out = Map::new();
            let mut withheld = Vec::new();
            for (name, field) in names.iter().zip(&fields) {
                if s.restricted.contains(field) {
                    // The spec types every dataset value as a string: a withheld value is
                    // left out and named in the row's `_restrictedFields`.
                    withheld.push(Value::String(name.clone()));
                } else {
                    out.insert(name.clone(), value_or_null(e.value(field, manager)));
                }
            }
            let mut row = json!({ "fields": out });
            if !withheld.is_empty() {
                row["_restrictedFields"] = Value::Array(withheld);
            }
            row
        })
        .collect();
    let link = |p: u64| format!("/api/v2/datasets/employee/data?page={p}&pageSize={page_size}");
    json_response(json!({
        "data": rows,
        "links": {
            "next": if page < total_pages { Value::String(link(page + 1)) } else { Value::Null },
            "prev": if page > 1 && page <= total_pages.max(1) { Value::String(link(page - 1)) } else { Value::Null },
        },
        "meta": {
            "page": page,
            "pageSize": page_size,
            "totalPages": total_pages,
            "totalItems": total_items,
        }
    }))
}

/// `since` as ISO 8601: RFC 3339, or without an offset (taken as UTC).
pub(crate) fn parse_since(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        PrimitiveDateTime::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        )
        .ok()
        .map(PrimitiveDateTime::assume_utc)
    })
}

/// `GET /api/v1/employees/changed`.
pub(crate) async fn changed(
    AxState(sim): AxState<Simulator>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let Some(since) = get("since").and_then(parse_since) else {
        return employee_error(
            "BadRequest",
            "since is missing or not an ISO 8601 timestamp.",
        );
    };
    let wanted = match get("type").map(str::to_ascii_lowercase).as_deref() {
        None | Some("all") => None,
        Some("inserted") => Some("Inserted"),
        Some("updated") => Some("Updated"),
        Some("deleted") => Some("Deleted"),
        Some(_) => {
            return employee_error(
                "BadRequest",
                "type must be inserted, updated, deleted or all.",
            )
        }
    };
    let s = sim.lock();
    let mut entries: Vec<(String, &'static str, OffsetDateTime)> = Vec::new();
    for (id, e) in &s.employees {
        if e.last_changed < since {
            continue;
        }
        let action = if e.deleted {
            "Deleted"
        } else if s.inserted_at.get(id).is_some_and(|t| *t >= since) {
            "Inserted"
        } else {
            "Updated"
        };
        if wanted.is_none_or(|w| w == action) {
            entries.push((e.employee_id.clone(), action, e.last_changed));
        }
    }
    let latest = entries.iter().map(|(_, _, t)| *t).max();
    if !wants_json(&headers) {
        // BambooHR answers XML unless JSON is asked for.
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<employees latest=\"{}\">",
            latest.map(format_timestamp).unwrap_or_default()
        );
        for (id, action, t) in &entries {
            xml.push_str(&format!(
                "<employee id=\"{}\" action=\"{action}\" lastChanged=\"{}\"/>",
                xml_escape(id),
                format_timestamp(*t)
            ));
        }
        xml.push_str("</employees>");
        return xml_response(xml);
    }
    let employees: Map<String, Value> = entries
        .into_iter()
        .map(|(id, action, t)| {
            (
                id.clone(),
                json!({ "id": id, "action": action, "lastChanged": format_timestamp(t) }),
            )
        })
        .collect();
    json_response(json!({
        "latest": latest.map(format_timestamp),
        "employees": employees,
    }))
}

/// `GET /api/v1/employees/{id}`.
pub(crate) async fn get_employee(
    AxState(sim): AxState<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let names: Vec<String> = params
        .iter()
        .find(|(k, _)| k == "fields")
        .map(|(_, v)| v.as_str())
        .unwrap_or("firstName,lastName")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() > MAX_GET_FIELDS {
        return (
            StatusCode::BAD_REQUEST,
            "Too many fields requested (maximum 400).",
        )
            .into_response();
    }
    let s = sim.lock();
    let Some(e) = s.live(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let manager = s.manager_of(e);
    let mut out = Map::new();
    out.insert("id".into(), Value::String(e.employee_id.clone()));
    for name in &names {
        let field = match Field::from_get_name(name) {
            Some(f) => f,
            None if s.custom_fields.contains(name) => Field::Custom(name.clone()),
            // Unknown names are left out of the answer.
            None => continue,
        };
        // Fields the caller may not see are omitted, as BambooHR documents.
        if field == Field::EmployeeId || s.restricted.contains(&field) {
            continue;
        }
        out.insert(name.clone(), value_or_null(e.value(&field, manager)));
    }
    if !wants_json(&headers) {
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<employee id=\"{}\">",
            xml_escape(&e.employee_id)
        );
        for (k, v) in out.iter().filter(|(k, _)| *k != "id") {
            xml.push_str(&format!(
                "<field id=\"{}\">{}</field>",
                xml_escape(k),
                xml_escape(v.as_str().unwrap_or_default())
            ));
        }
        xml.push_str("</employee>");
        return xml_response(xml);
    }
    json_response(Value::Object(out))
}

/// Any other `/api/...` path.
pub(crate) async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}
