//! Fan-out of one change event to a directory's targets. Each delivery carries the
//! object's current stored state (state transfer) and is recorded in a per
//! (object, target) ledger, so a duplicate or reordered event never pushes older data
//! and a target that already has a version is not sent it again.
//!
//! A target that fails in a way a retry may fix does not hold up the others, nor the
//! object's later changes: with a retry queue configured, the failed (object, target)
//! pair leaves the ordered change queue for the retry path ([`crate::retry`]), where
//! each attempt re-reads the current state. A target answering 410 Gone is disabled (a
//! conditional directory write) and a `directory.target_disabled` event is published.
//! A per-target circuit breaker sends deliveries straight to the retry path while a
//! target fails everything. Every outcome is written to the delivery log.

use std::time::Duration;

use domain::{
    ChangeEvent, Directory, DirectoryUser, EmployeeId, EventType, Target, TargetId, TargetKind,
    UserState,
};
use ports::{
    BreakerState, DeadLetter, DeliveryRecord, DeliveryStatus, LedgerAdvance, RetryTask, StoreError,
};
use reqwest::header::RETRY_AFTER;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::deps::Engine;
use crate::error::EngineError;
use crate::retry;
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
    /// The delivery failed (or the target's breaker is open) and was handed to the
    /// retry path; the change-queue message no longer waits for it.
    Scheduled {
        /// Why the last attempt did not succeed.
        reason: String,
        /// Retries made so far (0: the first retry is next).
        retries: u32,
        /// When the next attempt is due.
        #[serde(with = "time::serde::rfc3339")]
        next_attempt_at: OffsetDateTime,
    },
}

/// Per-target results for one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// One entry per target of the directory.
    pub targets: Vec<(TargetId, TargetOutcome)>,
}

impl DispatchReport {
    /// True when some target failed in a way a retry may fix and was not handed to
    /// the retry path, so the change-queue message itself must be retried.
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

/// One attempt's result with what the retry path needs beyond the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    pub(crate) outcome: TargetOutcome,
    /// The HTTP status of the decisive answer, if there was one.
    pub(crate) status: Option<u16>,
    /// How long the target asked us to wait (429/503 Retry-After).
    pub(crate) retry_after: Option<Duration>,
}

impl Attempt {
    pub(crate) fn plain(outcome: TargetOutcome) -> Self {
        let status = match &outcome {
            TargetOutcome::Delivered { status, .. } => Some(*status),
            _ => None,
        };
        Self {
            outcome,
            status,
            retry_after: None,
        }
    }

    fn failed(reason: impl Into<String>, retryable: bool) -> Self {
        Self::plain(TargetOutcome::Failed {
            reason: reason.into(),
            retryable,
        })
    }

    fn is_gone(&self) -> bool {
        self.status == Some(410)
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
    filter_check(&target.filter, user, true)
}

fn filter_check(
    f: &domain::TargetFilter,
    user: &DirectoryUser,
    check_state: bool,
) -> Result<(), String> {
    if check_state && !f.states.is_empty() && !f.states.contains(&user.state) {
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

/// The event to deliver and the user's current state: for user events, what is stored
/// now rather than what the event carried, so a late duplicate never undoes a newer
/// change.
pub(crate) async fn current_state(
    engine: &Engine,
    directory: &Directory,
    event: &ChangeEvent,
) -> Result<(ChangeEvent, Option<DirectoryUser>), EngineError> {
    if !event.event_type.is_user_event() {
        return Ok((event.clone(), None));
    }
    let current = match employee_of(event) {
        Some(emp) => engine.store.get_user(&directory.id, &emp).await?,
        None => None,
    };
    Ok(match current {
        Some(u) if u.version > event.version => {
            let event_type = if u.state == UserState::Deleted {
                EventType::UserDeleted
            } else {
                event.event_type
            };
            let ev = crate::apply::event_for_type(event_type, &u, event.occurred_at);
            (ev, Some(u))
        }
        Some(u) => (event.clone(), Some(u)),
        None => (event.clone(), None),
    })
}

/// Delivers one event to every enabled target of its directory.
pub async fn dispatch(engine: &Engine, event: &ChangeEvent) -> Result<DispatchReport, EngineError> {
    let directory = engine
        .store
        .get_directory(&event.directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(event.directory_id.clone()))?;
    let (delivery, user) = current_state(engine, &directory, event).await?;
    let secrets = engine.secrets.get(&directory.secret_name).await?;
    let mut report = DispatchReport::default();
    // Targets are independent (own ledger, log, breaker and retries), so they are
    // delivered concurrently: a slow or timing-out target adds its own latency to the
    // message, not the sum of everyone's.
    let enabled: Vec<&Target> = directory.targets.iter().filter(|t| t.enabled).collect();
    let outcomes = futures::future::join_all(enabled.iter().map(|target| {
        deliver_and_record(
            engine,
            &directory,
            target,
            &delivery,
            user.as_ref(),
            &secrets,
            None,
            false,
        )
    }))
    .await;
    for (target, outcome) in enabled.into_iter().zip(outcomes) {
        report.targets.push((target.id.clone(), outcome?));
    }
    Ok(report)
}

fn log_outcome(directory: &Directory, target: &Target, event: &ChangeEvent, o: &TargetOutcome) {
    match o {
        TargetOutcome::Delivered { status, version } => info!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            status, version, "delivered"
        ),
        TargetOutcome::Skipped { reason } => info!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, "delivery skipped"
        ),
        TargetOutcome::Failed { reason, retryable } => warn!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, retryable, "delivery failed"
        ),
        TargetOutcome::Scheduled {
            reason,
            retries,
            next_attempt_at,
        } => warn!(
            directory_id = %directory.id, event_id = %event.id, target_id = %target.id,
            reason = %reason, retries, next_attempt_at = %next_attempt_at, "delivery will be retried"
        ),
    }
}

/// One delivery of `event` to `target`, from the change queue (`task` None) or from
/// the retry path, with everything that follows from its outcome: ledger, breaker,
/// retry or dead letter, 410 handling and the delivery log. `force` (a re-push)
/// delivers even a version the ledger already holds.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn deliver_and_record(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    secrets: &ports::DirectorySecrets,
    task: Option<&RetryTask>,
    force: bool,
) -> Result<TargetOutcome, EngineError> {
    let now = engine.clock.now();
    let mut record = DeliveryRecord {
        directory_id: directory.id.clone(),
        target_id: target.id.clone(),
        object_id: event.object_id.clone(),
        event_id: event.id.clone(),
        version: event.version,
        status: DeliveryStatus::Skipped,
        attempts: task.map_or(1, |t| t.retries + 2),
        status_codes: Vec::new(),
        last_error: None,
        skipped_reason: None,
        first_attempt_at: task.map_or(now, |t| t.first_failed_at),
        last_attempt_at: now,
        next_attempt_at: None,
    };

    let ledger = engine
        .store
        .ledger_get(&directory.id, &target.id, &event.object_id)
        .await?;
    if let Some(u) = user {
        // A deleted user still reaches targets that got the user before, so they can
        // deprovision. One they never got is judged by the filter without its state
        // criterion, so a gated target (e.g. only "Litmos Access" users) never hears
        // of someone it was not meant to have.
        let verdict = match (u.state, ledger) {
            (UserState::Deleted, Some(_)) => Ok(()),
            (UserState::Deleted, None) => filter_check(&target.filter, u, false),
            _ => passes_filter(target, u),
        };
        if let Err(reason) = verdict {
            record.skipped_reason = Some(reason.clone());
            engine.store.put_delivery(&record).await?;
            let outcome = TargetOutcome::Skipped { reason };
            log_outcome(directory, target, event, &outcome);
            return Ok(outcome);
        }
    }
    if let Some(done) = ledger {
        if done >= event.version && !force {
            // The log already holds the delivery of `done`; a duplicate changes nothing.
            return Ok(TargetOutcome::Skipped {
                reason: format!("already delivered version {done}"),
            });
        }
    }

    let breaker = engine.store.get_breaker(&directory.id, &target.id).await?;
    if breaker.is_open(now) && engine.retry_queue.is_some() {
        // Do not call a target that fails everything; wait for the breaker, without
        // spending one of the delivery's retries.
        let wait = breaker
            .open_until
            .map_or(Duration::ZERO, |t| (t - now).unsigned_abs());
        let retries = task.map_or(0, |t| t.retries);
        // No call is made: the log counts only the attempts before this one.
        record.attempts = task.map_or(0, |t| t.retries + 1);
        let reason = "circuit breaker open: the target failed every recent delivery".to_string();
        return schedule(
            engine, directory, target, event, task, retries, wait, reason, record,
        )
        .await;
    }

    let attempt = attempt(engine, directory, target, event, user, secrets).await;
    if let Some(status) = attempt.status {
        // A retry continues the pair's history of status codes.
        if task.is_some() {
            if let Some(prev) = engine
                .store
                .get_delivery(&directory.id, &target.id, &event.object_id)
                .await?
            {
                record.status_codes = prev.status_codes;
            }
        }
        record.push_status(status);
    }

    let outcome = match attempt.outcome.clone() {
        TargetOutcome::Delivered { .. } => {
            // The log before the ledger: a crash (or a failed write) between the two
            // then leaves the ledger behind, so the redelivered message sends the
            // version again (a harmless duplicate, same webhook-id) and advances it.
            // The other order left a delivered version the log never showed: the
            // redelivery found the ledger at that version and skipped without a
            // record (found by the fault suite's killed dispatchers).
            record.status = DeliveryStatus::Delivered;
            engine.store.put_delivery(&record).await?;
            if let LedgerAdvance::AlreadyAt { current } = engine
                .store
                .ledger_advance(&directory.id, &target.id, &event.object_id, event.version)
                .await?
            {
                // A concurrent delivery of a newer version won; ours was harmless
                // (receivers see the stable webhook-id and version).
                info!(directory_id = %directory.id, target_id = %target.id, current, "ledger already ahead");
            }
            if breaker != BreakerState::default() {
                engine
                    .store
                    .put_breaker(&directory.id, &target.id, &BreakerState::default())
                    .await?;
            }
            // Written above; once per delivery.
            log_outcome(directory, target, event, &attempt.outcome);
            return Ok(attempt.outcome);
        }
        TargetOutcome::Skipped { reason } => {
            record.skipped_reason = Some(reason);
            attempt.outcome
        }
        TargetOutcome::Failed { reason, .. } if attempt.is_gone() => {
            record.status = DeliveryStatus::Failed;
            record.last_error = Some(format!("{reason}; target disabled"));
            disable_target(engine, directory, &target.id).await?;
            TargetOutcome::Failed {
                reason: format!("{reason}: the target is gone and has been disabled"),
                retryable: false,
            }
        }
        TargetOutcome::Failed {
            reason,
            retryable: true,
        } if engine.retry_queue.is_some() => {
            let opened = retry::breaker_after_failure(breaker, now);
            engine
                .store
                .put_breaker(&directory.id, &target.id, &opened)
                .await?;
            if opened.is_open(now) && !breaker.is_open(now) {
                warn!(directory_id = %directory.id, target_id = %target.id,
                      failures = opened.consecutive_failures, "circuit breaker opened");
            }
            let retries = task.map_or(0, |t| t.retries + 1);
            match retry::delay_before(retries, attempt.retry_after) {
                Some(delay) => {
                    return schedule(
                        engine, directory, target, event, task, retries, delay, reason, record,
                    )
                    .await;
                }
                None => {
                    let queue = engine.retry_queue.as_ref().expect("checked above");
                    let first = task.map_or(now, |t| t.first_failed_at);
                    let letter = DeadLetter {
                        task: RetryTask {
                            target_id: target.id.clone(),
                            event: event.clone(),
                            retries,
                            due_at: now,
                            first_failed_at: first,
                            last_error: reason.clone(),
                        },
                        reason: format!(
                            "{} attempts failed over {} hours",
                            retries + 1,
                            (now - first).whole_hours()
                        ),
                    };
                    queue.dead_letter(&letter).await?;
                    record.status = DeliveryStatus::DeadLettered;
                    record.last_error = Some(reason.clone());
                    TargetOutcome::Failed {
                        reason: format!("{reason}; dead-lettered after {} attempts", retries + 1),
                        retryable: false,
                    }
                }
            }
        }
        TargetOutcome::Failed { reason, retryable } => {
            record.status = if retryable {
                DeliveryStatus::Retrying
            } else {
                DeliveryStatus::Failed
            };
            record.last_error = Some(reason);
            attempt.outcome
        }
        TargetOutcome::Scheduled { .. } => attempt.outcome,
    };
    engine.store.put_delivery(&record).await?;
    log_outcome(directory, target, event, &outcome);
    Ok(outcome)
}

/// Hands the pair to the retry queue and logs it as retrying.
#[allow(clippy::too_many_arguments)]
async fn schedule(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    task: Option<&RetryTask>,
    retries: u32,
    delay: Duration,
    reason: String,
    mut record: DeliveryRecord,
) -> Result<TargetOutcome, EngineError> {
    let queue = engine
        .retry_queue
        .as_ref()
        .expect("callers schedule only with a retry queue");
    let now = engine.clock.now();
    let due_at = now + delay;
    let next = RetryTask {
        target_id: target.id.clone(),
        event: event.clone(),
        retries,
        due_at,
        first_failed_at: task.map_or(now, |t| t.first_failed_at),
        last_error: reason.clone(),
    };
    queue.schedule(&next, delay).await?;
    record.status = DeliveryStatus::Retrying;
    record.last_error = Some(reason.clone());
    record.next_attempt_at = Some(due_at);
    engine.store.put_delivery(&record).await?;
    let outcome = TargetOutcome::Scheduled {
        reason,
        retries,
        next_attempt_at: due_at,
    };
    log_outcome(directory, target, event, &outcome);
    Ok(outcome)
}

/// Disables a target that answered 410 Gone, with a write conditional on the
/// directory version read (re-read on conflict), and publishes
/// `directory.target_disabled`.
pub(crate) async fn disable_target(
    engine: &Engine,
    directory: &Directory,
    target_id: &TargetId,
) -> Result<(), EngineError> {
    const ATTEMPTS: u32 = 5;
    let mut current = directory.clone();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            current = engine
                .store
                .get_directory(&directory.id)
                .await?
                .ok_or_else(|| EngineError::DirectoryNotFound(directory.id.clone()))?;
        }
        let Some(t) = current.targets.iter_mut().find(|t| &t.id == target_id) else {
            return Ok(());
        };
        if !t.enabled {
            return Ok(());
        }
        t.enabled = false;
        let expected = current.version;
        current.version += 1;
        match engine.store.put_directory(&current, Some(expected)).await {
            Ok(()) => {
                warn!(directory_id = %directory.id, target_id = %target_id, "target answered 410 Gone; disabled");
                let event = ChangeEvent::new(
                    EventType::DirectoryTargetDisabled,
                    directory.id.clone(),
                    directory.id.as_str(),
                    current.version,
                    engine.clock.now(),
                    serde_json::json!({ "targetId": target_id.as_str(), "status": 410 }),
                );
                let published = engine.bus.publish(std::slice::from_ref(&event)).await?;
                if !published.all_published() {
                    warn!(directory_id = %directory.id, target_id = %target_id,
                          "the target_disabled event was not accepted by the bus");
                }
                return Ok(());
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::TooManyConflicts {
        what: format!("directory {} (disabling target {target_id})", directory.id),
        attempts: ATTEMPTS,
    })
}

/// One attempt at one target, by kind.
async fn attempt(
    engine: &Engine,
    directory: &Directory,
    target: &Target,
    event: &ChangeEvent,
    user: Option<&DirectoryUser>,
    secrets: &ports::DirectorySecrets,
) -> Attempt {
    let target_secrets = secrets.targets.get(target.id.as_str());
    match &target.kind {
        TargetKind::AppWebhook { url } => {
            let signing = target_secrets
                .map(|t| t.signing_secrets.as_slice())
                .unwrap_or(&[]);
            send_app_webhook(engine, url, signing, event).await
        }
        TargetKind::Scim { base_url, scim } => {
            let scim_target = crate::scim::ScimTarget {
                id: &target.id,
                base_url,
                token: target_secrets.and_then(|t| t.bearer_token.as_ref()),
                settings: crate::scim::ScimSettings::from_config(scim),
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
        } => {
            let params = target_secrets.map(|t| &t.url_params);
            crate::upsert::send(engine, url, params, fields, required, event, user).await
        }
        TargetKind::EventBridge { bus_arn } => match &engine.foreign_bus {
            None => Attempt::failed(
                "no customer-bus publisher is configured in this deployment",
                false,
            ),
            Some(bus) => match bus.put(bus_arn, event).await {
                Ok(()) => Attempt::plain(TargetOutcome::Delivered {
                    status: 200,
                    version: event.version,
                }),
                Err(e) => Attempt::failed(e.to_string(), e.retryable),
            },
        },
    }
}

/// Judges an HTTP answer of an app webhook or upsert target.
pub(crate) fn judge(
    engine: &Engine,
    resp: &reqwest::Response,
    version: u64,
    what: &str,
) -> Attempt {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Attempt::plain(TargetOutcome::Delivered { status, version });
    }
    let retryable = retry::is_retryable_status(status);
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, engine.clock.now()))
        .filter(|_| retryable);
    let mut reason = format!("{what}: HTTP {status}");
    if let Some(after) = retry_after {
        reason.push_str(&format!(", retry after {}s", after.as_secs()));
    }
    Attempt {
        outcome: TargetOutcome::Failed { reason, retryable },
        status: Some(status),
        retry_after,
    }
}

/// Names a transport failure without its (possibly URL-bearing) details.
pub(crate) fn transport_failure(e: &reqwest::Error, what: &str) -> Attempt {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    Attempt::failed(format!("{what}: {why}"), true)
}

/// POSTs the event signed per Standard Webhooks. `webhook-id` is the event id, which
/// is stable across retries, so receivers can deduplicate.
async fn send_app_webhook(
    engine: &Engine,
    url: &str,
    signing: &[SecretString],
    event: &ChangeEvent,
) -> Attempt {
    let secrets: Result<Vec<WebhookSecret>, _> = signing.iter().map(WebhookSecret::parse).collect();
    let secrets = match secrets {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return Attempt::failed("no signing secret configured for this target", false),
        Err(e) => return Attempt::failed(e.to_string(), false),
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
        Ok(resp) => judge(engine, &resp, event.version, "POST"),
        Err(e) => transport_failure(&e, "POST"),
    }
}

/// Appends the secret URL parameters (e.g. an API key) to a target URL. The result is
/// never logged.
pub(crate) fn with_secret_params(
    url: &str,
    params: Option<&std::collections::BTreeMap<String, SecretString>>,
) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(url).map_err(|_| "the target URL is not valid".to_string())?;
    if let Some(params) = params.filter(|p| !p.is_empty()) {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in params {
            pairs.append_pair(name, value.expose_secret());
        }
    }
    Ok(url)
}
