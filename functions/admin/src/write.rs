//! The write routes (`POST /admin/...`), each a thin shell over a `sync_engine::operate`
//! service that audits under the caller's IAM identity:
//!
//! | route | body | does |
//! |---|---|---|
//! | `/admin/directories/{id}/sync` | `{"mode": "incremental"\|"full"}` (optional) | a one-time schedule runs the poller for it in 30 s (202) |
//! | `/admin/directories/{id}/pause`, `/resume` | none | state and schedule follow |
//! | `/admin/directories/{id}/hold/release`, `/hold/discard` | none | resolves the hold |
//! | `/admin/directories/{id}/replay` | `{"target", "employeeId"?}` | re-pushes the current state to the target, whatever its ledger says (over 100 users: queued for the retry consumer, 202) |
//! | `/admin/dead-letters/redrive` | `{"max"?, "directoryId"?}` | puts dead letters back on the retry path (only that directory's when `directoryId` is given) |
//!
//! Each action is its own path (not a field of one body) so an IAM policy can allow
//! `execute-api:Invoke` on, say, `POST/admin/directories/*/sync` without allowing
//! hold releases. Bodies are parsed whole, unknown fields refused, before anything
//! changes. A sync is not run here: the function's short timeout suits asking the
//! poller, not doing its work.

use domain::{EmployeeId, SyncMode, TargetId};
use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};
use sync_engine::operate;
use sync_engine::operate::HoldDecision;
use tracing::info;

use crate::body::{body, no_body};
use crate::{caller, dir_id, scheduler, to_json, AdminApi, AdminError};

/// Most dead letters one redrive request moves (each is one SQS send).
pub const MAX_REDRIVE: usize = 1000;

/// Most users a re-push delivers within the request; a larger directory's re-push is
/// queued for the retry consumer and answered 202.
pub const INLINE_REPUSH_MAX: usize = 100;

/// Dead letters a redrive moves when the body names no `max`.
pub const DEFAULT_REDRIVE: usize = 100;

/// Whether `parts` (the path's segments) name a write route, whatever the method.
pub fn is_write_route(parts: &[&str]) -> bool {
    matches!(
        parts,
        [
            "admin",
            "directories",
            _,
            "sync" | "pause" | "resume" | "replay"
        ] | ["admin", "directories", _, "hold", "release" | "discard"]
            | ["admin", "dead-letters", "redrive"]
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ReplayBody {
    target: String,
    employee_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RedriveBody {
    max: Option<usize>,
    directory_id: Option<String>,
}

/// Answers a `POST`: the status and the body.
pub async fn route(
    api: &AdminApi,
    parts: &[&str],
    req: &Request,
) -> Result<(StatusCode, Value), AdminError> {
    let actor = caller::actor(req)?;
    let engine = &api.engine;
    let result = match parts {
        ["admin", "directories", id, "sync"] => {
            let id = dir_id(id)?;
            let mode = match body::<SyncBody>(req)?.mode.as_deref() {
                None | Some("incremental") => SyncMode::Incremental,
                Some("full") => SyncMode::Full,
                Some(other) => {
                    return Err(AdminError::bad_request(format!(
                        "mode must be incremental or full, not {other:?}"
                    )))
                }
            };
            let requested =
                operate::request_sync(engine, scheduler(api)?, &id, mode, &actor).await?;
            (StatusCode::ACCEPTED, to_json(&requested))
        }
        ["admin", "directories", id, action @ ("pause" | "resume")] => {
            let id = dir_id(id)?;
            no_body(req)?;
            let d = if *action == "pause" {
                operate::pause(engine, scheduler(api)?, &id, &actor).await?
            } else {
                operate::resume(engine, scheduler(api)?, &id, &actor).await?
            };
            (StatusCode::OK, to_json(&d))
        }
        ["admin", "directories", id, "hold", decision] => {
            let id = dir_id(id)?;
            no_body(req)?;
            let decision = if *decision == "release" {
                HoldDecision::Release
            } else {
                HoldDecision::Discard
            };
            let d = operate::resolve_hold(engine, &id, decision, &actor).await?;
            (StatusCode::OK, to_json(&d))
        }
        ["admin", "directories", id, "replay"] => {
            let id = dir_id(id)?;
            let b = body::<ReplayBody>(req)?;
            let target = TargetId::parse(&b.target)
                .map_err(|e| AdminError::bad_request(format!("target: {e}")))?;
            let employee = b
                .employee_id
                .as_deref()
                .map(EmployeeId::parse)
                .transpose()
                .map_err(|e| AdminError::bad_request(format!("employeeId: {e}")))?;
            if let Some(e) = &employee {
                // A re-push of an unknown employee would quietly re-push nobody.
                if engine.store.get_user(&id, e).await?.is_none() {
                    operate::directory(engine, &id).await?;
                    return Err(AdminError::NotFound(format!("no employee {e} in {id}")));
                }
            }
            if employee.is_none() {
                let users = engine.store.list_users(&id).await?.len();
                if users > INLINE_REPUSH_MAX {
                    // Too many for the request's 29 s: the retry consumer delivers them.
                    let queued = operate::queue_repush(engine, &id, &target, &actor).await?;
                    return Ok((
                        StatusCode::ACCEPTED,
                        json!({"directoryId": id, "targetId": target, "queued": queued}),
                    ));
                }
            }
            let outcomes = operate::repush(engine, &id, &target, employee.as_ref(), &actor).await?;
            // The engine names outcomes as `Delivered { .. }`, `Skipped { .. }`: the
            // variant is what an operator needs here; details are in the delivery log.
            let outcomes: Vec<Value> = outcomes
                .iter()
                .map(|(user, o)| {
                    let name = o
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    json!({"userId": user, "outcome": name})
                })
                .collect();
            let delivered = outcomes
                .iter()
                .filter(|o| o["outcome"] == "delivered")
                .count();
            (
                StatusCode::OK,
                json!({
                    "directoryId": id,
                    "targetId": target,
                    "employeeId": employee,
                    "users": outcomes.len(),
                    "delivered": delivered,
                    "outcomes": outcomes,
                }),
            )
        }
        ["admin", "dead-letters", "redrive"] => {
            let b = body::<RedriveBody>(req)?;
            let max = b.max.unwrap_or(DEFAULT_REDRIVE);
            if !(1..=MAX_REDRIVE).contains(&max) {
                return Err(AdminError::bad_request(format!(
                    "max must be 1 to {MAX_REDRIVE}"
                )));
            }
            let under = b.directory_id.as_deref().map(dir_id).transpose()?;
            if let Some(id) = &under {
                operate::directory(engine, id).await?;
            }
            let n = operate::redrive(engine, max, under.as_ref(), &actor).await?;
            (StatusCode::OK, json!({"redriven": n}))
        }
        _ => return Err(AdminError::NoRoute),
    };
    info!(route = %parts.join("/"), actor = %actor, status = result.0.as_u16(), "admin change made");
    Ok(result)
}
