//! The target kinds, one module each, holding that kind's delivery and its probe
//! (the operator's "test this target", which changes nothing there). This module
//! picks the kind.

use domain::{ChangeEvent, Directory, DirectoryUser, Target, TargetKind};

use crate::deliver::attempt::Attempt;
use crate::deps::Engine;

pub mod app_webhook;
pub mod eventbridge;
pub mod scim;
pub mod upsert;

/// One attempt at one target, by kind. `gate_exit` says the user is leaving the
/// target's gate and is sent deactivated (HTTP upsert targets only).
pub(crate) async fn attempt(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    secrets: &ports::DirectorySecrets,
    gate_exit: bool,
) -> Attempt {
    let target_secrets = secrets.targets.get(target.id.as_str());
    // A URL the policy refuses (plain HTTP on a deployed stack, a private address) is
    // never called; the delivery fails for good with the reason.
    let address = match &target.kind {
        TargetKind::AppWebhook { url, .. } | TargetKind::HttpUpsert { url, .. } => Some(url),
        TargetKind::Scim { base_url, .. } => Some(base_url),
        TargetKind::EventBridge { .. } => None,
    };
    if let Some(Err(refused)) = address.map(|u| engine.outbound.check(u)) {
        return Attempt::failed(format!("target URL refused: {refused}"), false);
    }
    match &target.kind {
        TargetKind::AppWebhook {
            url,
            format,
            projection,
        } => {
            let signing = target_secrets
                .map(|t| t.signing_secrets.as_slice())
                .unwrap_or(&[]);
            let format = app_webhook::AppFormat {
                format: *format,
                projection: projection.as_ref(),
            };
            app_webhook::send(engine, directory, url, signing, format, event, user).await
        }
        TargetKind::Scim { base_url, scim } => {
            let scim_target = scim::ScimTarget {
                id: &target.id,
                base_url,
                token: target_secrets.and_then(|t| t.bearer_token.as_ref()),
                settings: scim::ScimSettings::from_config(scim),
            };
            let group_event = !event.event_type.is_user_event()
                && event.event_type.as_str().starts_with("group.");
            if group_event && scim.push_groups {
                scim_target
                    .deliver_group(engine, directory, target, event)
                    .await
            } else {
                scim_target
                    .deliver_recorded(engine, &directory.id, event, user)
                    .await
            }
        }
        TargetKind::HttpUpsert {
            url,
            fields,
            required,
            ..
        } => {
            let upsert_target = upsert::UpsertTarget {
                directory: &directory.id,
                id: &target.id,
                url,
                params: target_secrets.map(|t| &t.url_params),
                fields,
                required,
            };
            upsert_target.send(engine, event, user, gate_exit).await
        }
        TargetKind::EventBridge {
            bus_arn,
            projection,
        } => eventbridge::send(engine, bus_arn, projection.as_ref(), event).await,
    }
}

/// What a target test found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetTest {
    /// Whether the target answered with a success.
    pub ok: bool,
    /// The HTTP status, when one came back.
    pub status: Option<u16>,
    /// What was tried and what came back, in a line.
    pub detail: String,
}

/// Why a target cannot be probed as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeRefused {
    /// The credential the probe needs is not configured (names it).
    Missing(&'static str),
    /// The signing secret is configured but unusable (why).
    BadSecret(String),
    /// The kind has no probe (why).
    NoProbe(String),
}

/// The kind's name as operators and the audit log write it.
pub fn kind_name(kind: &TargetKind) -> &'static str {
    match kind {
        TargetKind::AppWebhook { .. } => "app_webhook",
        TargetKind::Scim { .. } => "scim",
        TargetKind::HttpUpsert { .. } => "http_upsert",
        TargetKind::EventBridge { .. } => "event_bridge",
    }
}

/// Tests a target without changing anything there, with the kind's own probe: a
/// signed `ping` for an app webhook, `GET /Users?count=1` for SCIM, and a `HEAD` of
/// the URL (without its secret parameters) for an HTTP upsert. EventBridge targets
/// cannot be probed without publishing, so they are refused. One attempt with the
/// engine client's timeout: a test reports, it does not retry.
pub async fn probe(
    engine: &Engine,
    directory: &domain::DirectoryId,
    target: &Target,
    secrets: &ports::TargetSecrets,
) -> Result<TargetTest, ProbeRefused> {
    let request = match &target.kind {
        TargetKind::AppWebhook { url, .. } => {
            app_webhook::probe(engine, directory, &target.id, url, &secrets.signing_secrets)?
        }
        TargetKind::Scim { base_url, .. } => {
            scim::probe(engine, base_url, secrets.bearer_token.as_ref())?
        }
        TargetKind::HttpUpsert { url, .. } => upsert::probe(engine, url),
        TargetKind::EventBridge { .. } => return Err(eventbridge::probe()),
    };
    let kind = kind_name(&target.kind);
    Ok(match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            TargetTest {
                ok: status.is_success(),
                status: Some(status.as_u16()),
                detail: format!("{kind} answered {status}"),
            }
        }
        Err(e) => TargetTest {
            ok: false,
            status: None,
            detail: format!(
                "{kind} unreachable: {}",
                if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                }
            ),
        },
    })
}
