//! Inbound BambooHR webhooks, independent of HTTP framing: authenticate, parse, apply,
//! publish. The webhook function maps [`IngestError`] to status codes in one place.

use domain::{DirectoryId, DirectoryState, EmployeeId};
use serde::Deserialize;
use serde_json::{Map, Value};
use time::Duration;
use tracing::{info, warn};

use crate::apply::{apply_record, mark_deleted, ApplyOutcome};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::full_sync::{mapping_config, Skipped};
use crate::outbox;
use crate::signing::{parse_timestamp, verify_bamboohr};

/// Largest body accepted (BambooHR batches employees; 1 MiB holds thousands).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How far X-BambooHR-Timestamp may be from now before the request is a replay.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

/// One inbound request, as the HTTP layer saw it.
#[derive(Debug, Clone, Copy)]
pub struct InboundWebhook<'a> {
    /// Raw body bytes, exactly as received (the signature covers them).
    pub body: &'a [u8],
    /// `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// `X-BambooHR-Signature` header.
    pub signature: Option<&'a str>,
    /// `X-BambooHR-Timestamp` header.
    pub timestamp: Option<&'a str>,
}

/// Why an inbound webhook was refused. Messages name the problem, never field values.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No such directory, or it was revoked.
    #[error("unknown directory")]
    UnknownDirectory,
    /// The operator paused the directory; BambooHR should retry later.
    #[error("directory is paused")]
    Paused,
    /// Signature headers absent.
    #[error("missing X-BambooHR-Signature or X-BambooHR-Timestamp header")]
    MissingSignature,
    /// No active key of this directory made the signature.
    #[error("signature does not match")]
    BadSignature,
    /// The timestamp is unreadable or outside the tolerance window.
    #[error("timestamp outside the accepted window")]
    StaleTimestamp,
    /// Body larger than [`MAX_BODY_BYTES`].
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Not JSON.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Not a payload shape BambooHR sends.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// Storage, secrets or the bus failed; BambooHR should retry.
    #[error(transparent)]
    Internal(#[from] EngineError),
}

/// What an accepted webhook changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Users created.
    pub created: usize,
    /// Users updated.
    pub updated: usize,
    /// Users marked deleted.
    pub deleted: usize,
    /// Employees whose payload changed nothing (e.g. a BambooHR retry).
    pub unchanged: usize,
    /// Employees that could not be applied, with reasons.
    pub skipped: Vec<Skipped>,
    /// Events published.
    pub events_published: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FieldBasedPayload {
    employees: Vec<FieldBasedEmployee>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FieldBasedEmployee {
    id: Value,
    action: Option<String>,
    timestamp: Option<String>,
    #[serde(default)]
    fields: Map<String, Value>,
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Authenticates and applies one webhook for a directory.
pub async fn ingest(
    engine: &Engine,
    directory_id: &DirectoryId,
    req: InboundWebhook<'_>,
    tolerance: Duration,
) -> Result<IngestReport, IngestError> {
    if req.body.len() > MAX_BODY_BYTES {
        return Err(IngestError::TooLarge);
    }
    let is_json = req
        .content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(IngestError::UnsupportedMediaType);
    }

    let directory = engine
        .store
        .get_directory(directory_id)
        .await
        .map_err(EngineError::from)?
        .ok_or(IngestError::UnknownDirectory)?;
    match directory.state {
        DirectoryState::Revoked => return Err(IngestError::UnknownDirectory),
        DirectoryState::Paused => return Err(IngestError::Paused),
        DirectoryState::Active | DirectoryState::Held => {}
    }

    let (Some(signature), Some(timestamp)) = (req.signature, req.timestamp) else {
        return Err(IngestError::MissingSignature);
    };
    let secrets = engine
        .secrets
        .get(&directory.secret_name)
        .await
        .map_err(EngineError::from)?;
    if !verify_bamboohr(&secrets.webhook_keys, req.body, timestamp, signature) {
        return Err(IngestError::BadSignature);
    }
    let sent_at = parse_timestamp(timestamp).ok_or(IngestError::StaleTimestamp)?;
    if (engine.clock.now() - sent_at).abs() > tolerance {
        return Err(IngestError::StaleTimestamp);
    }

    let payload: FieldBasedPayload = serde_json::from_slice(req.body).map_err(|e| {
        IngestError::Malformed(format!(
            "expected a field-based payload {{\"employees\": [...]}} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;

    let cfg = mapping_config(&directory);
    let mut report = IngestReport::default();
    for employee in &payload.employees {
        let Some(id) = id_text(&employee.id) else {
            return Err(IngestError::Malformed(
                "an employee id is not a string or number".into(),
            ));
        };
        let action = employee.action.as_deref().unwrap_or("Updated");
        if action.eq_ignore_ascii_case("deleted") {
            let emp = EmployeeId::parse(&id).map_err(|e| IngestError::Malformed(e.to_string()))?;
            if mark_deleted(engine, &directory, &emp).await? == ApplyOutcome::Updated {
                report.deleted += 1;
            } else {
                report.unchanged += 1;
            }
            continue;
        }
        let record = match mapping::record_from_fields(&id, &employee.fields, &[], &cfg) {
            Ok(r) => r,
            Err(e) => {
                warn!(directory_id = %directory_id, employee_id = %id, reason = %e, "webhook employee skipped");
                report.skipped.push(Skipped {
                    employee_id: id,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let source_ts = employee.timestamp.as_deref().and_then(parse_timestamp);
        match apply_record(engine, &directory, &record, source_ts).await? {
            ApplyOutcome::Created => report.created += 1,
            ApplyOutcome::Updated => report.updated += 1,
            ApplyOutcome::Unchanged => report.unchanged += 1,
        }
    }

    let flushed = outbox::flush(engine, directory_id).await?;
    report.events_published = flushed.published;
    if flushed.failed > 0 {
        // The change is durable in the outbox; a 5xx makes BambooHR retry, and the
        // retry (or the next poll) publishes it once.
        return Err(IngestError::Internal(EngineError::Bus(
            ports::BusError::Unavailable {
                reason: format!("{} events not published", flushed.failed),
            },
        )));
    }
    info!(
        directory_id = %directory_id,
        created = report.created,
        updated = report.updated,
        deleted = report.deleted,
        unchanged = report.unchanged,
        skipped = report.skipped.len(),
        "webhook applied"
    );
    Ok(report)
}
