//! Inbound BambooHR webhooks, independent of HTTP framing: authenticate, recognise
//! duplicates, parse either payload family, apply, publish. The webhook function maps
//! [`IngestError`] to status codes in one place.
//!
//! Order matters for "nothing accepted is lost":
//! 1. cheap refusals (size, content type), then the directory and its state;
//! 2. authentication (signature with any active key, or an explicitly allowed URL
//!    token; on a mismatch the keys are re-read past the cache, rate-limited) and the
//!    replay window, before anything is read from the body;
//! 3. the whole body is parsed and validated before the first write, so a malformed
//!    entry never leaves half a payload applied;
//! 4. a delivery whose receipt exists is answered without applying anything;
//! 5. changes are written (user + outbox events in one conditional write) or refresh
//!    requests recorded, then the directory's outbox is flushed. An entry older than
//!    the stored change (its BambooHR `timestamp` before the user's source timestamp)
//!    is acknowledged and counted, never applied; deactivations and deletions go
//!    through the safeguard's webhook window ([`safeguard`]) and may be held;
//! 6. only when all of that succeeded is the receipt recorded. A failure before that
//!    answers 5xx, BambooHR retries, and the retry re-applies idempotently (unchanged
//!    fingerprints cost nothing) and publishes what the outbox still holds.

use domain::{Directory, DirectoryId, DirectoryState, EmployeeId, UserState};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::reconcile::apply::{apply_record, context, is_stale, mark_gone_at, ApplyOutcome};
use crate::reconcile::groups::GroupBook;
use crate::reconcile::outbox;
use crate::signing::{parse_timestamp, verify_bamboohr, verify_token};
use crate::source::client::{mapping_config, Skipped};

pub mod safeguard;

use safeguard::{is_live, Removal};

/// Largest body accepted (BambooHR batches employees; 1 MiB holds thousands).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How far X-BambooHR-Timestamp may be from now before the request is a replay.
pub const DEFAULT_TOLERANCE: Duration = Duration::minutes(5);

/// How long a delivery receipt is kept. BambooHR retries for about 155 minutes (5, 10,
/// 20, 40, 80); a day covers that with room for a delayed retry.
pub const RECEIPT_TTL: Duration = Duration::hours(24);

/// One inbound request, as the HTTP layer saw it. Its `Debug` shows sizes and which
/// headers came, never the body (HR field values), the signature or the URL token.
#[derive(Clone, Copy, Default)]
pub struct InboundWebhook<'a> {
    /// Raw body bytes, exactly as received (the signature covers them).
    pub body: &'a [u8],
    /// `Content-Type` header.
    pub content_type: Option<&'a str>,
    /// `X-BambooHR-Signature` header.
    pub signature: Option<&'a str>,
    /// `X-BambooHR-Timestamp` header.
    pub timestamp: Option<&'a str>,
    /// The `token` query parameter (URL-token mode only).
    pub url_token: Option<&'a str>,
}

impl std::fmt::Debug for InboundWebhook<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundWebhook")
            .field("body_bytes", &self.body.len())
            .field("content_type", &self.content_type)
            .field("signed", &self.signature.is_some())
            .field("timestamp", &self.timestamp)
            .field("url_token", &self.url_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// Why an inbound webhook was refused. Messages name the problem, never field values.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No such directory, or it was revoked. Not retryable. Answered exactly as a bad
    /// signature, so the endpoint does not reveal which directories exist.
    #[error("unknown directory")]
    UnknownDirectory,
    /// The operator paused the directory (told only to an authenticated caller);
    /// BambooHR should retry later.
    #[error("directory is paused")]
    Paused,
    /// Signature headers absent (and no allowed URL token). Not retryable.
    #[error("missing X-BambooHR-Signature or X-BambooHR-Timestamp header")]
    MissingSignature,
    /// No active key of this directory made the signature, or the URL token is wrong.
    /// Not retryable.
    #[error("signature does not match")]
    BadSignature,
    /// The timestamp is unreadable or outside the tolerance window. Not retryable.
    #[error("timestamp outside the accepted window")]
    StaleTimestamp,
    /// Body larger than [`MAX_BODY_BYTES`]. Not retryable.
    #[error("body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// Not JSON. Not retryable.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Not a payload shape BambooHR sends; the message names the problem. Not retryable.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// Storage, secrets or the bus failed; see [`EngineError::is_retryable`].
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
    /// Entries older than what is stored (their BambooHR `timestamp` is before the
    /// user's source timestamp, e.g. a late retry): acknowledged, not applied.
    pub stale: usize,
    /// Deactivations and deletions held by the mass-change safeguard for an operator
    /// (accepted and recorded as refresh requests, not applied).
    pub held: usize,
    /// Employees left for the poller to fetch (event-based payloads carry ids only).
    pub refresh_requested: usize,
    /// Events of a type this service does not act on (e.g. `company.updated`).
    pub ignored: usize,
    /// Employees that could not be applied, with reasons.
    pub skipped: Vec<Skipped>,
    /// Events published (this delivery's and any the outbox still held).
    pub events_published: usize,
    /// True when this delivery was already accepted before; nothing was applied.
    pub duplicate: bool,
}

impl IngestReport {
    /// True when the delivery was accepted but some of its work is left to the poller
    /// or held for an operator (202).
    pub fn is_deferred(&self) -> bool {
        !self.duplicate && (self.refresh_requested > 0 || self.held > 0)
    }
}

/// A field-based entry's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Created,
    Updated,
    Deleted,
}

/// One `employees[]` entry, validated.
struct FieldEntry<'a> {
    id: String,
    action: Action,
    timestamp: Option<OffsetDateTime>,
    /// None when the entry carried no `fields` (a Deleted entry usually does not).
    fields: Option<&'a Map<String, Value>>,
}

/// The event-based payload's employee events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmployeeEvent {
    Created,
    Updated,
    Deleted,
}

/// A payload, validated before anything is written.
enum Payload<'a> {
    FieldBased(Vec<FieldEntry<'a>>),
    Employee {
        event: EmployeeEvent,
        employee: EmployeeId,
    },
    /// An event type this service does not act on.
    OtherEvent,
}

fn malformed(msg: impl Into<String>) -> IngestError {
    IngestError::Malformed(msg.into())
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the body as one of BambooHR's two payload families. Messages name the key
/// path and what was expected, never the value found.
fn parse_payload(value: &Value) -> Result<Payload<'_>, IngestError> {
    let Some(obj) = value.as_object() else {
        return Err(malformed(
            "unknown payload shape: expected a JSON object with \"employees\" (field-based) or \"type\" (event-based)",
        ));
    };
    if let Some(employees) = obj.get("employees") {
        let Some(list) = employees.as_array() else {
            return Err(malformed(
                "field-based payload: \"employees\" is not an array",
            ));
        };
        return list
            .iter()
            .enumerate()
            .map(|(i, e)| parse_field_entry(i, e))
            .collect::<Result<Vec<_>, _>>()
            .map(Payload::FieldBased);
    }
    if let Some(kind) = obj.get("type") {
        let Some(kind) = kind.as_str() else {
            return Err(malformed("event-based payload: \"type\" is not a string"));
        };
        let event = match kind {
            "employee.created" => EmployeeEvent::Created,
            "employee.updated" => EmployeeEvent::Updated,
            "employee.deleted" => EmployeeEvent::Deleted,
            _ => return Ok(Payload::OtherEvent),
        };
        let id = obj
            .get("data")
            .and_then(Value::as_object)
            .and_then(|d| d.get("employeeId"))
            .and_then(id_text)
            .ok_or_else(|| {
                malformed("event-based payload: \"data.employeeId\" is missing or not a string")
            })?;
        let employee = EmployeeId::parse(id.trim()).map_err(|_| {
            malformed("event-based payload: \"data.employeeId\" is not an employee id")
        })?;
        return Ok(Payload::Employee { event, employee });
    }
    Err(malformed(
        "unknown payload shape: expected \"employees\" (field-based) or \"type\" (event-based)",
    ))
}

fn parse_field_entry(i: usize, entry: &Value) -> Result<FieldEntry<'_>, IngestError> {
    let at = |what: &str| malformed(format!("field-based payload: employees[{i}] {what}"));
    let obj = entry.as_object().ok_or_else(|| at("is not an object"))?;
    let id = obj
        .get("id")
        .and_then(id_text)
        .ok_or_else(|| at("has no \"id\" string or number"))?;
    let action = match obj.get("action") {
        None | Some(Value::Null) => Action::Updated,
        Some(Value::String(a)) if a.eq_ignore_ascii_case("created") => Action::Created,
        Some(Value::String(a)) if a.eq_ignore_ascii_case("updated") => Action::Updated,
        Some(Value::String(a)) if a.eq_ignore_ascii_case("deleted") => Action::Deleted,
        Some(_) => return Err(at("\"action\" is not Created, Updated or Deleted")),
    };
    let timestamp = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(
            parse_timestamp(t).ok_or_else(|| at("\"timestamp\" is not an ISO 8601 timestamp"))?,
        ),
        Some(_) => return Err(at("\"timestamp\" is not a string")),
    };
    let fields = match obj.get("fields") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(at("\"fields\" is not an object")),
    };
    Ok(FieldEntry {
        id,
        action,
        timestamp,
        fields,
    })
}

/// The receipt key of a delivery: the SHA-256 of its body. BambooHR re-signs a retry
/// with a fresh timestamp (an old one would fall outside the replay window), so the
/// body, which carries BambooHR's own event timestamps, is what identifies it.
pub fn receipt_key(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// How often a directory's webhook keys may be re-read past the secret cache when a
/// signature fails with the cached ones: a key registered after a warm instance filled
/// its cache is accepted at once, while a flood of bad signatures costs at most one
/// Secrets Manager read per directory per minute.
pub const KEY_REREAD_EVERY: Duration = Duration::minutes(1);

/// Checks the request's credentials against the directory's secret. When they fail
/// with the (possibly cached) keys, the keys are read once more past the cache, at
/// most once per [`KEY_REREAD_EVERY`] per directory, before the request is refused.
async fn authenticate(
    engine: &Engine,
    directory: &Directory,
    req: &InboundWebhook<'_>,
    tolerance: Duration,
) -> Result<(), IngestError> {
    let signed = req.signature.is_some() && req.timestamp.is_some();
    let token_offered = directory.webhook_url_token_allowed && req.url_token.is_some();
    if !(signed || token_offered) {
        return Err(IngestError::MissingSignature);
    }
    // The webhook function reads only the incoming keys (IAM allows it no other part).
    let parts = [ports::SecretPart::Webhook];
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &parts)
        .await
        .map_err(EngineError::from)?;
    match check_credentials(&secrets, req) {
        Err(IngestError::BadSignature)
            if engine.key_rereads.try_take(
                directory.id.as_str(),
                engine.clock.now(),
                KEY_REREAD_EVERY,
            ) =>
        {
            info!(directory_id = %directory.id, reason = "signature failed with the cached keys", "webhook keys re-read");
            let fresh = engine
                .secrets
                .get_parts_fresh(&directory.secret_name, &parts)
                .await
                .map_err(EngineError::from)?;
            check_credentials(&fresh, req)?;
        }
        other => other?,
    }
    if let Some(timestamp) = req.timestamp.filter(|_| signed) {
        let sent_at = parse_timestamp(timestamp).ok_or(IngestError::StaleTimestamp)?;
        if (engine.clock.now() - sent_at).abs() > tolerance {
            return Err(IngestError::StaleTimestamp);
        }
    }
    Ok(())
}

/// Whether the request's signature (or, without one, its URL token) was made with
/// `secrets`; the replay window is checked by the caller.
fn check_credentials(
    secrets: &ports::DirectorySecrets,
    req: &InboundWebhook<'_>,
) -> Result<(), IngestError> {
    if let (Some(signature), Some(timestamp)) = (req.signature, req.timestamp) {
        return if verify_bamboohr(&secrets.webhook_keys, req.body, timestamp, signature) {
            Ok(())
        } else {
            Err(IngestError::BadSignature)
        };
    }
    // URL-token mode: allowed by the directory, and the secret must hold a token.
    match (req.url_token, secrets.webhook_url_token.as_ref()) {
        (Some(given), Some(expected)) if verify_token(expected, given) => Ok(()),
        _ => Err(IngestError::BadSignature),
    }
}

/// Authenticates and applies one webhook for a directory. A signature is required
/// unless the directory opted into URL-token mode and its secret holds a token.
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
    if directory.state == DirectoryState::Revoked {
        return Err(IngestError::UnknownDirectory);
    }
    // Authenticated first: a caller without a valid signature learns nothing about the
    // directory (not even that it is paused).
    authenticate(engine, &directory, &req, tolerance).await?;
    if directory.state == DirectoryState::Paused {
        return Err(IngestError::Paused);
    }

    let value: Value = serde_json::from_slice(req.body).map_err(|e| {
        malformed(format!(
            "body is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let payload = parse_payload(&value)?;

    let receipt = receipt_key(req.body);
    let now = engine.clock.now();
    if engine
        .store
        .has_receipt(directory_id, &receipt, now)
        .await
        .map_err(EngineError::from)?
    {
        info!(directory_id = %directory_id, reason = "duplicate delivery", "webhook already accepted");
        return Ok(IngestReport {
            duplicate: true,
            ..IngestReport::default()
        });
    }

    let mut report = IngestReport::default();
    let groups = GroupBook::new(&directory);
    let (applied, written) = outbox::collecting(async {
        apply_payload(engine, &directory, &groups, payload, &mut report, now).await
    })
    .await;
    applied?;

    let flushed = outbox::publish_written(engine, directory_id, written).await?;
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

    // Everything is durable and published; only now may a retry be answered as a
    // duplicate. A failure here costs a harmless re-apply, so it is not an error.
    if let Err(e) = engine
        .store
        .record_receipt(directory_id, &receipt, now, now + RECEIPT_TTL)
        .await
    {
        warn!(directory_id = %directory_id, reason = %e, "delivery receipt not recorded");
    }
    info!(
        directory_id = %directory_id,
        created = report.created,
        updated = report.updated,
        deleted = report.deleted,
        unchanged = report.unchanged,
        stale = report.stale,
        held = report.held,
        refresh_requested = report.refresh_requested,
        skipped = report.skipped.len(),
        "webhook applied"
    );
    Ok(report)
}

/// How soon after an event-based webhook its targeted run happens: late enough that a
/// burst of webhooks for many employees shares one run (one-time schedules collapse per
/// minute), soon enough that the change lands within a couple of minutes.
pub const TARGETED_RUN_AFTER: time::Duration = time::Duration::minutes(1);

/// Applies one parsed delivery to the store (the caller publishes what it wrote).
async fn apply_payload(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    payload: Payload<'_>,
    report: &mut IngestReport,
    now: OffsetDateTime,
) -> Result<(), IngestError> {
    match payload {
        Payload::FieldBased(entries) => {
            apply_field_based(engine, directory, groups, &entries, report).await?
        }
        Payload::Employee {
            event: EmployeeEvent::Deleted,
            employee,
        } => {
            // BambooHR says the employee is gone: nothing to fetch. A live user's
            // deletion goes through the safeguard.
            let mut removals = Vec::new();
            delete_entry(
                engine,
                directory,
                groups,
                employee,
                None,
                &mut removals,
                report,
            )
            .await?;
            safeguard::settle(engine, directory, groups, removals, report).await?;
        }
        Payload::Employee { employee, .. } => {
            engine
                .store
                .record_refresh_requests(&directory.id, std::slice::from_ref(&employee), now)
                .await
                .map_err(EngineError::from)?;
            report.refresh_requested += 1;
            schedule_targeted_run(engine, &directory.id, now).await;
        }
        Payload::OtherEvent => {
            info!(directory_id = %directory.id, reason = "event type not acted on", "webhook ignored");
            report.ignored += 1;
        }
    }

    Ok(())
}

/// Asks for a targeted run soon. A failure is logged, not returned: the refresh request
/// is durable and the directory's next incremental run picks it up anyway.
async fn schedule_targeted_run(engine: &Engine, directory: &DirectoryId, now: OffsetDateTime) {
    let Some(scheduler) = &engine.scheduler else {
        return;
    };
    let request = domain::SyncRequest {
        directory_id: directory.clone(),
        mode: domain::SyncMode::Targeted,
    };
    if let Err(e) = scheduler
        .schedule_once(&request, now + TARGETED_RUN_AFTER)
        .await
    {
        warn!(directory_id = %directory, reason = %e, retryable = e.is_retryable(), "targeted run not scheduled; the next incremental run refreshes");
    }
}

/// Notes an entry older than the stored user: acknowledged (BambooHR must not retry
/// it), counted and logged by id and reason, never applied.
fn note_stale(directory: &Directory, employee: &str, report: &mut IngestReport) {
    info!(
        directory_id = %directory.id,
        employee_id = employee,
        reason = "entry timestamp is older than the stored change",
        "webhook entry not applied"
    );
    report.stale += 1;
}

/// A deletion BambooHR reported (stamped `at` when a field-based entry carried a
/// timestamp): a live user's is kept back for the safeguard, any other is applied.
async fn delete_entry(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    employee: EmployeeId,
    at: Option<OffsetDateTime>,
    removals: &mut Vec<Removal>,
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let stored = engine
        .store
        .get_user(&directory.id, &employee)
        .await
        .map_err(EngineError::from)?;
    if is_stale(stored.as_ref(), at) {
        note_stale(directory, employee.as_str(), report);
        return Ok(());
    }
    if stored.as_ref().is_some_and(|u| is_live(u.state)) {
        removals.push(Removal::Delete { employee, at });
        return Ok(());
    }
    match mark_gone_at(engine, directory, groups, &employee, UserState::Deleted, at).await? {
        ApplyOutcome::Updated => report.deleted += 1,
        ApplyOutcome::Stale => note_stale(directory, employee.as_str(), report),
        _ => report.unchanged += 1,
    }
    Ok(())
}

async fn apply_field_based(
    engine: &Engine,
    directory: &Directory,
    groups: &GroupBook,
    entries: &[FieldEntry<'_>],
    report: &mut IngestReport,
) -> Result<(), IngestError> {
    let cfg = mapping_config(directory);
    let no_fields = Map::new();
    let mut removals: Vec<Removal> = Vec::new();
    for entry in entries {
        if entry.action == Action::Deleted {
            let emp = EmployeeId::parse(entry.id.trim())
                .map_err(|_| malformed("field-based payload: an \"id\" is not an employee id"))?;
            delete_entry(
                engine,
                directory,
                groups,
                emp,
                entry.timestamp,
                &mut removals,
                report,
            )
            .await?;
            continue;
        }
        let record = match mapping::record_from_fields(
            &entry.id,
            entry.fields.unwrap_or(&no_fields),
            &[],
            &cfg,
        ) {
            Ok(r) => r,
            Err(e) => {
                warn!(directory_id = %directory.id, reason = %e, "webhook employee skipped");
                report.skipped.push(Skipped {
                    employee_id: entry.id.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        // A live user these fields would deactivate waits for the safeguard.
        let stored = engine
            .store
            .get_user(&directory.id, &record.employee_id)
            .await
            .map_err(EngineError::from)?;
        if is_stale(stored.as_ref(), entry.timestamp) {
            note_stale(directory, record.employee_id.as_str(), report);
            continue;
        }
        if let Some(before) = stored.as_ref().filter(|u| is_live(u.state)) {
            let now = engine.clock.now();
            let after = mapping::apply(
                Some(before),
                &record,
                &context(directory, now, entry.timestamp),
            );
            if !is_live(after.state) {
                removals.push(Removal::Deactivate {
                    record,
                    at: entry.timestamp,
                });
                continue;
            }
        }
        match apply_record(engine, directory, groups, &record, entry.timestamp).await? {
            ApplyOutcome::Created => report.created += 1,
            ApplyOutcome::Updated => report.updated += 1,
            ApplyOutcome::Unchanged => report.unchanged += 1,
            ApplyOutcome::Stale => note_stale(directory, record.employee_id.as_str(), report),
        }
    }
    safeguard::settle(engine, directory, groups, removals, report).await?;
    Ok(())
}

#[cfg(test)]
mod debug_tests {
    use super::InboundWebhook;

    #[test]
    fn an_inbound_webhook_debug_shows_no_body_signature_or_url_token() {
        let w = InboundWebhook {
            body: br#"{"employees":[{"fields":{"Last Name":"Zyxwv"}}]}"#,
            content_type: Some("application/json"),
            signature: Some("deadbeef-signature"),
            timestamp: Some("2026-12-07T10:00:00Z"),
            url_token: Some("url-token-secret-77"),
        };
        let shown = format!("{w:?}");
        for hidden in ["Zyxwv", "deadbeef-signature", "url-token-secret-77"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
        assert!(shown.contains("body_bytes"), "{shown}");
    }
}
