//! The read routes (`GET /admin/...`): a directory, its status, users, groups, runs,
//! deliveries, quarantined events, the audit log and evidence, straight from the store through
//! `sync_engine::operate`. Lists are pages (`{"items", "nextCursor"}`; `limit` and
//! `cursor` in the query). User lists carry ids, names and states only; one user's
//! record is the whole synced object, for an operator checking what a target received.

use domain::{EmployeeId, UserId};
use lambda_http::Request;
use ports::{BusError, DeliveryQuery, DeliveryStatus};
use serde_json::{json, Value};
use sync_engine::{operate, Engine};

use crate::body::{page, query};
use crate::{dir_id, to_json, AdminApi, AdminError};

/// Whether `parts` (the path's segments) name a read route, whatever the method.
pub fn is_read_route(parts: &[&str]) -> bool {
    matches!(
        parts,
        ["admin", "directories", _]
            | [
                "admin",
                "directories",
                _,
                "status"
                    | "users"
                    | "groups"
                    | "runs"
                    | "deliveries"
                    | "quarantine"
                    | "audit"
                    | "evidence"
            ]
            | ["admin", "directories", _, "users", _]
    )
}

/// How many of the newest runs, audit entries or evidence rows a listing pages
/// through (their stores answer newest first, up to a count).
pub const MAX_SCAN: usize = 2000;

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
            page(
                req,
                users,
                |u| u["id"].as_str().unwrap_or_default().to_string(),
                100,
            )
        }
        ["admin", "directories", id, "groups"] => {
            let id = dir_id(id)?;
            operate::directory(engine, &id).await?;
            let groups = engine.store.list_groups(&id).await?;
            page(req, groups, |g| g.id.to_string(), 100)
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
            operate::directory(engine, &id).await?;
            let runs = engine.store.list_runs(&id, MAX_SCAN).await?;
            page(req, runs, |r| r.id.to_string(), 20)
        }
        ["admin", "directories", id, "quarantine"] => {
            let id = dir_id(id)?;
            operate::directory(engine, &id).await?;
            // Ids, sizes and reasons only: the events themselves hold HR data.
            let items: Vec<Value> = engine
                .store
                .list_quarantined(&id, MAX_SCAN)
                .await?
                .into_iter()
                .map(|q| {
                    // The record as stored (times in RFC 3339), serialized once for the
                    // times and the event's size.
                    let whole = to_json(&q);
                    let bytes = whole["event"].to_string().len();
                    json!({
                        "eventId": q.event.id,
                        "type": q.event.event_type.as_str(),
                        "objectId": q.event.object_id,
                        "version": q.event.version,
                        "occurredAt": whole["event"]["occurredAt"],
                        "bytes": bytes,
                        "reason": q.reason,
                        "quarantinedAt": whole["quarantinedAt"],
                    })
                })
                .collect();
            page(
                req,
                items,
                |q| q["eventId"].as_str().unwrap_or_default().to_string(),
                50,
            )
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
            operate::directory(engine, &id).await?;
            let rows = engine.store.list_deliveries(&id, &q).await?;
            page(
                req,
                rows,
                |r| format!("{}|{}", r.event_id, r.target_id),
                100,
            )
        }
        ["admin", "directories", id, "audit"] => {
            let id = dir_id(id)?;
            // `_stack`: the stack-wide entries (the OAuth client), of no directory.
            if !operate::oauth_client::is_reserved(&id) {
                operate::directory(engine, &id).await?;
            }
            let entries = engine.store.list_audit(&id, MAX_SCAN).await?;
            page(req, entries, |e| e.id.clone(), 50)
        }
        ["admin", "directories", id, "evidence"] => {
            let id = dir_id(id)?;
            let d = operate::directory(engine, &id).await?;
            let rows = engine.store.list_evidence(&id, MAX_SCAN).await?;
            let now = engine.clock.now();
            let rows: Vec<Value> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let mut v = to_json(r);
                    v["stale"] = json!(i > 0 || operate::evidence_is_stale(&d, Some(r), now));
                    v
                })
                .collect();
            page(
                req,
                rows,
                |r| r["capturedAt"].as_str().unwrap_or_default().to_string(),
                20,
            )
        }
        _ => Err(AdminError::NoRoute),
    }
}
