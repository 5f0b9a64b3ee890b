//! The customer's app as a target: each change POSTed and signed per Standard Webhooks
//! (`webhook-id` = the stable event id, one signature per active secret), in this
//! sync's own event format or WorkOS Directory Sync's ([`mapping::workos`]), cut to
//! the target's field projection.

use domain::{
    ChangeEvent, Directory, DirectoryUser, EmployeeId, EventFormat, EventType, FieldProjection,
    GroupId,
};
use mapping::workos::{self, NotRendered, Subject};
use secrecy::SecretString;

use crate::deliver::attempt::{judge, transport_failure, Attempt, TargetOutcome};
use crate::deliver::targets::ProbeRefused;
use crate::deps::Engine;
use crate::error::EngineError;
use crate::signing::{standard_webhook_signature, WebhookSecret};

/// How an app-webhook target wants its bodies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppFormat<'a> {
    /// Native or WorkOS.
    pub format: EventFormat,
    /// The user attributes it receives (none: all).
    pub projection: Option<&'a FieldProjection>,
}

/// Our own event format, with the user cut to `projection` (user events carry the
/// user as `data`); `previousAttributes` is WorkOS-format only, so it is left out.
pub(crate) fn native_body(
    event: &ChangeEvent,
    projection: Option<&FieldProjection>,
) -> ChangeEvent {
    let mut out = event.clone();
    out.previous_attributes = None;
    if let (Some(p), true) = (projection, event.event_type.is_user_event()) {
        out.data = p.apply(&event.data);
    }
    out
}

/// The WorkOS body of `event`, reading the objects it needs (the user: `user`, else
/// the event's; for memberships the user and group as stored now), or why there is
/// none.
async fn workos_body(
    engine: &Engine,
    directory: &Directory,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    projection: Option<&FieldProjection>,
) -> Result<Result<serde_json::Value, NotRendered>, EngineError> {
    if workos::event_name(event.event_type).is_none() {
        return Ok(Err(NotRendered::NoCounterpart(event.event_type.as_str())));
    }
    let mut subject_user: Option<DirectoryUser> = user.cloned();
    let mut group = None;
    match event.event_type {
        EventType::UserCreated | EventType::UserUpdated | EventType::UserDeleted
            if subject_user.is_none() =>
        {
            subject_user = serde_json::from_value(event.data.clone()).ok();
        }
        EventType::GroupUserAdded | EventType::GroupUserRemoved => {
            let employee = event
                .data
                .get("employeeId")
                .and_then(|v| v.as_str())
                .and_then(|s| EmployeeId::parse(s).ok());
            if let Some(emp) = employee {
                subject_user = engine.store.get_user(&directory.id, &emp).await?;
            }
            let group_id = event
                .data
                .get("groupId")
                .and_then(|v| v.as_str())
                .and_then(|s| GroupId::parse(s).ok());
            if let Some(gid) = group_id {
                group = engine
                    .store
                    .list_groups(&directory.id)
                    .await?
                    .into_iter()
                    .find(|g| g.id == gid);
            }
        }
        _ => {}
    }
    let subject_user = match (subject_user, projection) {
        (Some(u), Some(p)) => Some(p.clear_user(&u)),
        (u, _) => u,
    };
    Ok(workos::render(
        event,
        &Subject {
            directory,
            user: subject_user.as_ref(),
            group: group.as_ref(),
        },
    ))
}

/// POSTs the event signed per Standard Webhooks. `webhook-id` is the event id, which
/// is stable across retries, so receivers can deduplicate. An event a WorkOS-format
/// target has no counterpart for is skipped with the reason.
pub(crate) async fn send(
    engine: &Engine,
    directory: &Directory,
    url: &str,
    signing: &[SecretString],
    format: AppFormat<'_>,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
) -> Attempt {
    let secrets = match keys(signing) {
        Ok(s) => s,
        Err(reason) => return Attempt::failed(reason, false),
    };
    let body = match format.format {
        EventFormat::Native => serde_json::to_vec(&native_body(event, format.projection))
            .expect("a ChangeEvent serializes"),
        EventFormat::Workos => {
            match workos_body(engine, directory, event, user, format.projection).await {
                Ok(Ok(v)) => serde_json::to_vec(&v).expect("a WorkOS event serializes"),
                Ok(Err(NotRendered::NoCounterpart(t))) => {
                    return Attempt::plain(TargetOutcome::Skipped {
                        reason: format!("WorkOS format: {t} has no WorkOS event"),
                    })
                }
                Ok(Err(NotRendered::Missing(what))) => {
                    return Attempt::plain(TargetOutcome::Skipped {
                        reason: format!("WorkOS format: the event's {what} is not stored"),
                    })
                }
                Err(e) => return Attempt::failed(e.to_string(), e.is_retryable()),
            }
        }
    };
    let ts = engine.clock.now().unix_timestamp();
    match signed_post(engine, url, &secrets, event.id.as_str(), ts, body)
        .send()
        .await
    {
        Ok(resp) => judge(engine, &resp, event.version, "POST"),
        Err(e) => transport_failure(&e, "POST"),
    }
}

/// The probe: a signed `ping` (Standard Webhooks headers, `type: ping`), which changes
/// nothing at a receiver that ignores types it does not know.
pub(crate) fn probe(
    engine: &Engine,
    directory: &domain::DirectoryId,
    target: &domain::TargetId,
    url: &str,
    signing: &[SecretString],
) -> Result<reqwest::RequestBuilder, ProbeRefused> {
    if signing.is_empty() {
        return Err(ProbeRefused::Missing("signing secret for this target"));
    }
    let secrets = keys(signing).map_err(ProbeRefused::BadSecret)?;
    let now = engine.clock.now();
    let msg_id = format!("ping_{:016x}", rand::random::<u64>());
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": domain::EVENT_SCHEMA_VERSION,
        "id": msg_id,
        "type": "ping",
        "directoryId": directory,
        "objectId": target,
        "version": 0,
        "occurredAt": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "data": {},
    }))
    .expect("a ping serializes");
    Ok(signed_post(
        engine,
        url,
        &secrets,
        &msg_id,
        now.unix_timestamp(),
        body,
    ))
}

/// The target's signing keys, or why it has none usable.
fn keys(signing: &[SecretString]) -> Result<Vec<WebhookSecret>, String> {
    match signing
        .iter()
        .map(WebhookSecret::parse)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) if !s.is_empty() => Ok(s),
        Ok(_) => Err("no signing secret configured for this target".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A POST of `body` with the Standard Webhooks headers, signed with every key.
fn signed_post(
    engine: &Engine,
    url: &str,
    secrets: &[WebhookSecret],
    msg_id: &str,
    ts: i64,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let signature = standard_webhook_signature(secrets, msg_id, ts, &body);
    engine
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, EmployeeId, UserState};

    fn updated() -> ChangeEvent {
        let mut before = DirectoryUser::new(
            DirectoryId::parse("acme").unwrap(),
            EmployeeId::parse("7").unwrap(),
            UserState::Active,
        );
        before.first_name = Some("Ada".into());
        before.last_name = Some("Byron".into());
        before.version = 1;
        let mut after = before.clone();
        after.last_name = Some("Lovelace".into());
        after.version = 2;
        ChangeEvent::for_user_write(Some(&before), &after, time::OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn the_native_body_is_the_event_as_before_without_previous_attributes() {
        let event = updated();
        assert!(event.previous_attributes.is_some());
        let body = native_body(&event, None);
        assert_eq!(body.data, event.data);
        let v = serde_json::to_value(&body).unwrap();
        assert!(v.get("previousAttributes").is_none());
    }

    #[test]
    fn a_projection_cuts_the_user_in_the_native_body_for_app_webhooks_and_buses() {
        let p = FieldProjection::parse(&["lastName".into()]).unwrap();
        let body = native_body(&updated(), Some(&p));
        let data = body.data.as_object().unwrap();
        assert_eq!(data["lastName"], "Lovelace");
        assert_eq!(data["employeeId"], "7");
        assert!(!data.contains_key("firstName"));
        // Non-user events carry no user: unchanged.
        let other = ChangeEvent::new(
            EventType::DirectorySyncCompleted,
            DirectoryId::parse("acme").unwrap(),
            "acme",
            1,
            time::OffsetDateTime::UNIX_EPOCH,
            serde_json::json!({"firstName": "kept"}),
        );
        assert_eq!(native_body(&other, Some(&p)).data["firstName"], "kept");
    }
}
