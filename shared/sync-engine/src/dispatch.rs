//! Fan-out of one change event to a directory's targets. Each delivery carries the
//! object's current stored state (state transfer) and is recorded in a per
//! (object, target) ledger, so a duplicate or reordered event never pushes older data
//! and a target that already has a version is not sent it again.

use domain::{
    ChangeEvent, Directory, DirectoryUser, EmployeeId, Target, TargetId, TargetKind, UserState,
};
use ports::LedgerAdvance;
use secrecy::SecretString;
use serde::Serialize;
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::signing::{standard_webhook_signature, WebhookSecret};

/// What happened at one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TargetOutcome {
    /// The target accepted the delivery.
    Delivered {
        /// HTTP status.
        status: u16,
        /// The object version delivered.
        version: u64,
    },
    /// Nothing was sent, on purpose.
    Skipped {
        /// Why, e.g. "already delivered version 3".
        reason: String,
    },
    /// The delivery failed.
    Failed {
        /// Why (status code or transport error; never the body).
        reason: String,
        /// Whether a later attempt may succeed.
        retryable: bool,
    },
}

/// Per-target results for one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// One entry per target of the directory.
    pub targets: Vec<(TargetId, TargetOutcome)>,
}

impl DispatchReport {
    /// True when some target failed in a way a retry may fix.
    pub fn needs_retry(&self) -> bool {
        self.targets.iter().any(|(_, o)| {
            matches!(
                o,
                TargetOutcome::Failed {
                    retryable: true,
                    ..
                }
            )
        })
    }
}

fn employee_of(event: &ChangeEvent) -> Option<EmployeeId> {
    event
        .data
        .get("employeeId")
        .and_then(|v| v.as_str())
        .and_then(|s| EmployeeId::parse(s).ok())
}

/// Whether a target's filter lets this user through.
pub fn passes_filter(target: &Target, user: &DirectoryUser) -> Result<(), String> {
    let f = &target.filter;
    if !f.states.is_empty() && !f.states.contains(&user.state) {
        return Err(format!("filtered out: state {}", user.state.as_str()));
    }
    if f.require_work_email && user.work_email().is_none() {
        return Err("filtered out: no work email".into());
    }
    if f.field_in.is_empty() {
        return Ok(());
    }
    // Serialised once, and only for targets that filter on fields.
    let user_json = serde_json::to_value(user).expect("a DirectoryUser serializes");
    for (field, accepted) in &f.field_in {
        let value = user_json
            .get(field)
            .or_else(|| user.custom_attributes.get(field))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
        if !value
            .map(|v| accepted.iter().any(|a| a == &v))
            .unwrap_or(false)
        {
            return Err(format!("filtered out: {field} not in the accepted values"));
        }
    }
    Ok(())
}

/// Delivers one event to every enabled target of its directory.
pub async fn dispatch(engine: &Engine, event: &ChangeEvent) -> Result<DispatchReport, EngineError> {
    let directory = engine
        .store
        .get_directory(&event.directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(event.directory_id.clone()))?;

    // State transfer: for user events, deliver what is stored now, not what the event
    // carried, so a late duplicate can never undo a newer change.
    let (delivery, user) = if event.event_type.is_user_event() {
        let current = match employee_of(event) {
            Some(emp) => engine.store.get_user(&directory.id, &emp).await?,
            None => None,
        };
        match current {
            Some(u) if u.version > event.version => {
                let event_type = if u.state == UserState::Deleted {
                    domain::EventType::UserDeleted
                } else {
                    event.event_type
                };
                let ev = crate::apply::event_for_type(event_type, &u, event.occurred_at);
                (ev, Some(u))
            }
            Some(u) => (event.clone(), Some(u)),
            None => (event.clone(), None),
        }
    } else {
        (event.clone(), None)
    };

    let secrets = engine.secrets.get(&directory.secret_name).await?;
    let mut report = DispatchReport::default();
    for target in directory.targets.iter().filter(|t| t.enabled) {
        let outcome = deliver_to(
            engine,
            &directory,
            target,
            &delivery,
            user.as_ref(),
            &secrets,
        )
        .await?;
        match &outcome {
            TargetOutcome::Delivered { status, version } => info!(
                directory_id = %directory.id, event_id = %delivery.id, target_id = %target.id,
                status, version, "delivered"
            ),
            TargetOutcome::Skipped { reason } => info!(
                directory_id = %directory.id, event_id = %delivery.id, target_id = %target.id,
                reason = %reason, "delivery skipped"
            ),
            TargetOutcome::Failed { reason, retryable } => warn!(
                directory_id = %directory.id, event_id = %delivery.id, target_id = %target.id,
                reason = %reason, retryable, "delivery failed"
            ),
        }
        report.targets.push((target.id.clone(), outcome));
    }
    Ok(report)
}

async fn deliver_to(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    secrets: &ports::DirectorySecrets,
) -> Result<TargetOutcome, EngineError> {
    if let Some(u) = user {
        // A deleted user still reaches targets that got the user before, so they can
        // deprovision; filters apply to live users.
        if u.state != UserState::Deleted {
            if let Err(reason) = passes_filter(target, u) {
                return Ok(TargetOutcome::Skipped { reason });
            }
        }
    }
    if let Some(done) = engine
        .store
        .ledger_get(&directory.id, &target.id, &event.object_id)
        .await?
    {
        if done >= event.version {
            return Ok(TargetOutcome::Skipped {
                reason: format!("already delivered version {done}"),
            });
        }
    }

    let outcome = match &target.kind {
        TargetKind::AppWebhook { url } => {
            let signing = secrets
                .targets
                .get(target.id.as_str())
                .map(|t| t.signing_secrets.as_slice())
                .unwrap_or(&[]);
            send_app_webhook(engine, url, signing, event).await
        }
        TargetKind::Scim { base_url } => {
            let scim = crate::scim::ScimTarget {
                id: &target.id,
                base_url,
                token: secrets
                    .targets
                    .get(target.id.as_str())
                    .and_then(|t| t.bearer_token.as_ref()),
                settings: crate::scim::ScimSettings::default(),
            };
            scim.deliver(&engine.http, event, user).await
        }
        other => TargetOutcome::Skipped {
            reason: format!(
                "target kind {} is not delivered by this version",
                kind_name(other)
            ),
        },
    };

    if let TargetOutcome::Delivered { .. } = outcome {
        if let LedgerAdvance::AlreadyAt { current } = engine
            .store
            .ledger_advance(&directory.id, &target.id, &event.object_id, event.version)
            .await?
        {
            // A concurrent delivery of a newer version won; ours was harmless
            // (receivers see the stable webhook-id and version).
            info!(directory_id = %directory.id, target_id = %target.id, current, "ledger already ahead");
        }
    }
    Ok(outcome)
}

fn kind_name(kind: &TargetKind) -> &'static str {
    match kind {
        TargetKind::AppWebhook { .. } => "app_webhook",
        TargetKind::Scim { .. } => "scim",
        TargetKind::HttpUpsert { .. } => "http_upsert",
        TargetKind::EventBridge { .. } => "event_bridge",
    }
}

/// POSTs the event signed per Standard Webhooks. `webhook-id` is the event id, which
/// is stable across retries, so receivers can deduplicate.
async fn send_app_webhook(
    engine: &Engine,
    url: &str,
    signing: &[SecretString],
    event: &ChangeEvent,
) -> TargetOutcome {
    let secrets: Result<Vec<WebhookSecret>, _> = signing.iter().map(WebhookSecret::parse).collect();
    let secrets = match secrets {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => {
            return TargetOutcome::Failed {
                reason: "no signing secret configured for this target".into(),
                retryable: false,
            }
        }
        Err(e) => {
            return TargetOutcome::Failed {
                reason: e.to_string(),
                retryable: false,
            }
        }
    };
    let body = serde_json::to_vec(event).expect("a ChangeEvent serializes");
    let ts = engine.clock.now().unix_timestamp();
    let signature = standard_webhook_signature(&secrets, event.id.as_str(), ts, &body);
    let result = engine
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", event.id.as_str())
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) if resp.status().is_success() => TargetOutcome::Delivered {
            status: resp.status().as_u16(),
            version: event.version,
        },
        Ok(resp) => {
            let status = resp.status().as_u16();
            TargetOutcome::Failed {
                reason: format!("HTTP {status}"),
                retryable: matches!(status, 408 | 429 | 500..=599),
            }
        }
        Err(e) => TargetOutcome::Failed {
            reason: if e.is_timeout() {
                "timed out".into()
            } else if e.is_connect() {
                "connection failed".into()
            } else {
                "transport error".into()
            },
            retryable: true,
        },
    }
}
