//! The read routes (`GET /admin/...`): directories, status, users, runs, deliveries,
//! the audit log and evidence, straight from the store through `sync_engine::operate`.
//! User lists carry ids, names and states only; one user's record is the whole
//! synced object, for an operator checking what a target received.

use domain::{EmployeeId, UserId};
use lambda_http::{Request, RequestExt};
use ports::{BusError, DeliveryQuery, DeliveryStatus};
use serde_json::{json, Value};
use sync_engine::{operate, Engine};

use crate::{dir_id, to_json, AdminApi, AdminError, MAX_LIMIT};

/// Whether `parts` (the path's segments) name a read route, whatever the method.
pub fn is_read_route(parts: &[&str]) -> bool {
    matches!(
        parts,
        ["admin", "directories"]
            | ["admin", "directories", _]
            | [
                "admin",
                "directories",
                _,
                "status" | "users" | "runs" | "deliveries" | "audit" | "evidence"
            ]
            | ["admin", "directories", _, "users", _]
    )
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name).map(str::to_string))
}

fn limit(req: &Request, default: usize) -> Result<usize, AdminError> {
    match query(req, "limit") {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| AdminError::bad_request(format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// The depth of the stack's dead-letter queues (deliveries that failed every attempt
/// and, where the retry queue knows it, changes the dispatcher gave up on, summed; the
/// queues are the stack's, shared by every directory), or `None` for an engine without
/// a retry queue. A queue that cannot be read fails the request (503): a status that
/// silently says 0 dead letters while they pile up is worse than none.
async fn dead_letter_depth(engine: &Engine) -> Result<Option<u64>, AdminError> {
    let Some(queue) = &engine.retry_queue else {
        return Ok(None);
    };
    match queue.dead_letter_depth().await {
        Ok(depth) => Ok(Some(depth)),
        Err(BusError::Unavailable { reason }) => Err(AdminError::Queue(reason)),
    }
}

/// Answers a `GET`.
pub async fn route(api: &AdminApi, parts: &[&str], req: &Request) -> Result<Value, AdminError> {
    let engine = &api.engine;
    match parts {
        ["admin", "directories"] => Ok(to_json(&engine.store.list_directories().await?)),
        ["admin", "directories", id] => {
            Ok(to_json(&operate::directory(engine, &dir_id(id)?).await?))
        }
        ["admin", "directories", id, "status"] => {
            let id = dir_id(id)?;
            // Checked first, so an unknown directory is a 404 without a queue read.
            operate::directory(engine, &id).await?;
            let depth = dead_letter_depth(engine).await?;
            Ok(to_json(&operate::status(engine, &id, depth).await?))
        }
        ["admin", "directories", id, "users"] => {
            let id = dir_id(id)?;
            operate::directory(engine, &id).await?;
            let state = query(req, "state");
            let users: Vec<Value> = engine
                .store
                .list_users(&id)
                .await?
                .into_iter()
                .filter(|u| state.as_deref().is_none_or(|s| u.state.as_str() == s))
                .map(|u| {
                    json!({"id": u.id, "employeeId": u.employee_id, "displayName": u.display_name,
                           "state": u.state, "version": u.version})
                })
                .collect();
            Ok(Value::Array(users))
        }
        ["admin", "directories", id, "users", employee] => {
            let id = dir_id(id)?;
            let e = EmployeeId::parse(*employee)
                .map_err(|e| AdminError::bad_request(format!("employee id: {e}")))?;
            let user = engine
                .store
                .get_user(&id, &e)
                .await?
                .ok_or_else(|| AdminError::NotFound(format!("no employee {e} in {id}")))?;
            Ok(to_json(&user))
        }
        ["admin", "directories", id, "runs"] => {
            let id = dir_id(id)?;
            Ok(to_json(
                &engine.store.list_runs(&id, limit(req, 20)?).await?,
            ))
        }
        ["admin", "directories", id, "deliveries"] => {
            let id = dir_id(id)?;
            let status = match query(req, "status") {
                None => None,
                Some(s) => Some(
                    serde_json::from_value::<DeliveryStatus>(json!(s))
                        .map_err(|_| AdminError::bad_request(format!("unknown status {s:?}")))?,
                ),
            };
            let target = match query(req, "target") {
                None => None,
                Some(t) => Some(
                    domain::TargetId::parse(t)
                        .map_err(|e| AdminError::bad_request(format!("target id: {e}")))?,
                ),
            };
            let object_id = match query(req, "user") {
                None => None,
                Some(u) if u.starts_with("usr_") => Some(u),
                Some(u) => Some(
                    UserId::derive(
                        &id,
                        &EmployeeId::parse(u)
                            .map_err(|e| AdminError::bad_request(format!("user: {e}")))?,
                    )
                    .to_string(),
                ),
            };
            let q = DeliveryQuery {
                target,
                object_id,
                status,
            };
            Ok(to_json(&engine.store.list_deliveries(&id, &q).await?))
        }
        ["admin", "directories", id, "audit"] => {
            let id = dir_id(id)?;
            Ok(to_json(
                &engine.store.list_audit(&id, limit(req, 50)?).await?,
            ))
        }
        ["admin", "directories", id, "evidence"] => {
            let id = dir_id(id)?;
            let d = operate::directory(engine, &id).await?;
            let rows = engine.store.list_evidence(&id, limit(req, 20)?).await?;
            let now = engine.clock.now();
            Ok(Value::Array(
                rows.iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut v = to_json(r);
                        v["stale"] = json!(i > 0 || operate::evidence_is_stale(&d, Some(r), now));
                        v
                    })
                    .collect(),
            ))
        }
        _ => Err(AdminError::NoRoute),
    }
}
