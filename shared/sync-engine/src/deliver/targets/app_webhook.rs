//! The customer's app as a target: each change POSTed and signed per Standard Webhooks
//! (`webhook-id` = the stable event id, one signature per active secret).

use domain::ChangeEvent;
use secrecy::SecretString;

use crate::deliver::attempt::{judge, transport_failure, Attempt};
use crate::deliver::targets::ProbeRefused;
use crate::deps::Engine;
use crate::signing::{standard_webhook_signature, WebhookSecret};

/// POSTs the event signed per Standard Webhooks. `webhook-id` is the event id, which
/// is stable across retries, so receivers can deduplicate.
pub(crate) async fn send(
    engine: &Engine,
    url: &str,
    signing: &[SecretString],
    event: &ChangeEvent,
) -> Attempt {
    let secrets = match keys(signing) {
        Ok(s) => s,
        Err(reason) => return Attempt::failed(reason, false),
    };
    let body = serde_json::to_vec(event).expect("a ChangeEvent serializes");
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
