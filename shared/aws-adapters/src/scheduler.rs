//! [`EventBridgeScheduler`]: `ports::Scheduler` on EventBridge Scheduler.
//!
//! Every schedule lives in the stack's schedule group (the poller's IAM statement
//! covers that group only), runs as the stack's scheduler role, invokes the poller
//! with a `SyncRequest` JSON as its input, retries a failed invocation
//! ([`RETRY_ATTEMPTS`] times within [`MAX_EVENT_AGE_SECONDS`]) and then dead-letters it
//! to the stack's queue, which is alarmed.
//!
//! Names (Scheduler allows 1-64 of `[0-9A-Za-z._-]`):
//! - the recurring schedule of a directory is named by the directory id itself (ids
//!   are 1-64 of `[0-9A-Za-z_-]`, so always valid);
//! - a one-time run is `once.<mode>.<yyyymmddThhmm>.<id>`, and when the id does not
//!   fit, its first 8 characters, a dot and 24 hex digits of its SHA-256. Directory
//!   ids never contain a dot, so no one-time name can equal a recurring one, and
//!   distinct ids never share a name. Because the name carries the minute, repeated
//!   requests for one directory, mode and minute meet Scheduler's `ConflictException`,
//!   which here means "already scheduled".
//!
//! A recurring schedule is written with `UpdateSchedule` first (the usual case: it
//! exists), then `CreateSchedule` when it does not; a create that loses a race with
//! another writer updates instead, so the last writer's settings win either way.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode,
    RetryPolicy, ScheduleState, Target,
};
use aws_sdk_scheduler::Client;
use domain::{DirectoryId, SyncRequest};
use ports::{DirectorySchedule, OnceOutcome, Scheduler, SchedulerError};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

use crate::clients;

/// Retries of a failed invocation of the poller before the event is dead-lettered.
pub const RETRY_ATTEMPTS: i32 = 3;

/// How long Scheduler keeps retrying one invocation: past an hour the next run of
/// the directory's schedule does the same work anyway.
pub const MAX_EVENT_AGE_SECONDS: i32 = 3600;

/// The time zone of every expression written here.
const TIME_ZONE: &str = "UTC";

/// Longest schedule name Scheduler accepts.
const MAX_NAME_LEN: usize = 64;

/// Where the schedules live and what they invoke, from the stack's outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBridgeSchedulerConfig {
    /// The schedule group of the stack.
    pub group_name: String,
    /// The role Scheduler assumes to invoke the poller (and to write dead letters).
    pub role_arn: String,
    /// The poller function's ARN, unqualified.
    pub target_arn: String,
    /// The SQS queue failed invocations go to.
    pub dead_letter_arn: String,
}

/// Directory schedules on EventBridge Scheduler.
#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: Client,
    config: EventBridgeSchedulerConfig,
}

/// The name of a directory's recurring schedule.
pub fn directory_schedule_name(directory: &DirectoryId) -> String {
    directory.as_str().to_string()
}

/// The name of a one-time run of `request` due at `at` (see the module docs).
pub fn once_schedule_name(request: &SyncRequest, at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    let prefix = format!(
        "once.{}.{:04}{:02}{:02}T{:02}{:02}.",
        request.mode.as_str(),
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    let id = request.directory_id.as_str();
    if prefix.len() + id.len() <= MAX_NAME_LEN {
        return format!("{prefix}{id}");
    }
    let digest = Sha256::digest(id.as_bytes());
    let hash: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let head: String = id.chars().take(8).collect();
    format!("{prefix}{head}.{hash}")
}

/// `rate(...)` for a whole number of minutes (Scheduler wants the singular for 1).
fn rate_expression(every_minutes: u32) -> String {
    if every_minutes == 1 {
        "rate(1 minute)".to_string()
    } else {
        format!("rate({every_minutes} minutes)")
    }
}

/// Minutes of a `rate(...)` expression, whichever unit it uses.
fn parse_rate(expression: &str) -> Option<u32> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.split_once(' ')?;
    let value: u32 = value.parse().ok()?;
    let factor = match unit {
        "minute" | "minutes" => 1,
        "hour" | "hours" => 60,
        "day" | "days" => 1440,
        _ => return None,
    };
    value.checked_mul(factor)
}

/// `at(yyyy-mm-ddThh:mm:ss)` in UTC, whole seconds.
fn at_expression(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "at({:04}-{:02}-{:02}T{:02}:{:02}:{:02})",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Maps an SDK failure to the port's error (see [`from_code`]).
fn classify<E, R>(op: &str, err: &SdkError<E, R>) -> SchedulerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    from_code(error_code(err), clients::sdk_reason(op, err))
}

/// No answer (transport, timeout, a server error without a code), throttling and
/// internal errors are worth a retry; anything else the service said is final.
fn from_code(code: Option<&str>, reason: String) -> SchedulerError {
    match code {
        None | Some("ThrottlingException" | "InternalServerException") => {
            SchedulerError::Unavailable { reason }
        }
        Some(_) => SchedulerError::Rejected { reason },
    }
}

fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}

fn rejected(reason: String) -> SchedulerError {
    SchedulerError::Rejected { reason }
}

/// Everything a recurring schedule is written with.
struct Definition {
    name: String,
    expression: String,
    window: FlexibleTimeWindow,
    state: ScheduleState,
    target: Target,
}

impl EventBridgeScheduler {
    /// A scheduler with [`clients`]'s timeouts and retries.
    pub fn new(sdk: &SdkConfig, config: EventBridgeSchedulerConfig) -> Self {
        Self::from_client(clients::scheduler(sdk), config)
    }

    /// A scheduler using an existing client.
    pub fn from_client(client: Client, config: EventBridgeSchedulerConfig) -> Self {
        Self { client, config }
    }

    /// Where the schedules live and what they invoke.
    pub fn config(&self) -> &EventBridgeSchedulerConfig {
        &self.config
    }

    fn target(&self, request: &SyncRequest) -> Result<Target, SchedulerError> {
        let input = serde_json::to_string(request)
            .map_err(|e| rejected(format!("cannot serialize the sync request: {e}")))?;
        Target::builder()
            .arn(&self.config.target_arn)
            .role_arn(&self.config.role_arn)
            .input(input)
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(RETRY_ATTEMPTS)
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
                    .build(),
            )
            .dead_letter_config(
                DeadLetterConfig::builder()
                    .arn(&self.config.dead_letter_arn)
                    .build(),
            )
            .build()
            .map_err(|e| rejected(format!("incomplete schedule target: {e}")))
    }

    fn definition(&self, schedule: &DirectorySchedule) -> Result<Definition, SchedulerError> {
        let window = match schedule.flexible_window_minutes {
            0 => FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off),
            // `validate` bounds the window by 1440, so the conversion cannot fail.
            m => FlexibleTimeWindow::builder()
                .mode(FlexibleTimeWindowMode::Flexible)
                .maximum_window_in_minutes(i32::try_from(m).unwrap_or(i32::MAX)),
        }
        .build()
        .map_err(|e| rejected(format!("incomplete flexible window: {e}")))?;
        Ok(Definition {
            name: directory_schedule_name(&schedule.directory_id),
            expression: rate_expression(schedule.every_minutes),
            window,
            state: if schedule.enabled {
                ScheduleState::Enabled
            } else {
                ScheduleState::Disabled
            },
            target: self.target(&schedule.request)?,
        })
    }

    async fn update(&self, d: &Definition) -> Result<(), SdkErrorOf<UpdateError>> {
        self.client
            .update_schedule()
            .group_name(&self.config.group_name)
            .name(&d.name)
            .schedule_expression(&d.expression)
            .schedule_expression_timezone(TIME_ZONE)
            .flexible_time_window(d.window.clone())
            .state(d.state.clone())
            .target(d.target.clone())
            .send()
            .await
            .map(|_| ())
    }

    async fn create(&self, d: &Definition) -> Result<(), SdkErrorOf<CreateError>> {
        self.client
            .create_schedule()
            .group_name(&self.config.group_name)
            .name(&d.name)
            .schedule_expression(&d.expression)
            .schedule_expression_timezone(TIME_ZONE)
            .flexible_time_window(d.window.clone())
            .state(d.state.clone())
            .target(d.target.clone())
            .send()
            .await
            .map(|_| ())
    }

    /// Reads a schedule this adapter wrote back into the port's shape.
    fn read_back(
        directory: &DirectoryId,
        out: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    ) -> Result<DirectorySchedule, SchedulerError> {
        let unreadable =
            |what: &str| rejected(format!("schedule of directory {directory} has {what}"));
        let every_minutes = out
            .schedule_expression()
            .and_then(parse_rate)
            .ok_or_else(|| unreadable("no rate expression"))?;
        let flexible_window_minutes = match out.flexible_time_window() {
            Some(w) if *w.mode() == FlexibleTimeWindowMode::Flexible => w
                .maximum_window_in_minutes()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| unreadable("a flexible window without a length"))?,
            _ => 0,
        };
        let request: SyncRequest = out
            .target()
            .and_then(|t| t.input())
            .and_then(|input| serde_json::from_str(input).ok())
            .ok_or_else(|| unreadable("no sync request as its input"))?;
        if &request.directory_id != directory {
            return Err(unreadable("a request for another directory"));
        }
        Ok(DirectorySchedule {
            directory_id: directory.clone(),
            every_minutes,
            flexible_window_minutes,
            enabled: out.state() != Some(&ScheduleState::Disabled),
            request,
        })
    }
}

type UpdateError = aws_sdk_scheduler::operation::update_schedule::UpdateScheduleError;
type CreateError = aws_sdk_scheduler::operation::create_schedule::CreateScheduleError;
type SdkErrorOf<E> = SdkError<E, aws_sdk_scheduler::config::http::HttpResponse>;

#[async_trait]
impl Scheduler for EventBridgeScheduler {
    async fn put_directory_schedule(
        &self,
        schedule: &DirectorySchedule,
    ) -> Result<(), SchedulerError> {
        schedule.validate()?;
        let d = self.definition(schedule)?;
        let written = match self.update(&d).await {
            Ok(()) => "updated",
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => {
                match self.create(&d).await {
                    Ok(()) => "created",
                    // Another writer created it between our update and create.
                    Err(e) if error_code(&e) == Some("ConflictException") => {
                        self.update(&d)
                            .await
                            .map_err(|e| classify("UpdateSchedule", &e))?;
                        "updated"
                    }
                    Err(e) => return Err(classify("CreateSchedule", &e)),
                }
            }
            Err(e) => return Err(classify("UpdateSchedule", &e)),
        };
        tracing::info!(
            directory = %schedule.directory_id,
            schedule = %d.name,
            group = %self.config.group_name,
            every_minutes = schedule.every_minutes,
            flexible_window_minutes = schedule.flexible_window_minutes,
            enabled = schedule.enabled,
            mode = schedule.request.mode.as_str(),
            written,
            "directory schedule written"
        );
        Ok(())
    }

    async fn get_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<Option<DirectorySchedule>, SchedulerError> {
        let result = self
            .client
            .get_schedule()
            .group_name(&self.config.group_name)
            .name(directory_schedule_name(directory))
            .send()
            .await;
        match result {
            Ok(out) => Self::read_back(directory, &out).map(Some),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(classify("GetSchedule", &e)),
        }
    }

    async fn delete_directory_schedule(
        &self,
        directory: &DirectoryId,
    ) -> Result<(), SchedulerError> {
        let name = directory_schedule_name(directory);
        let result = self
            .client
            .delete_schedule()
            .group_name(&self.config.group_name)
            .name(&name)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(
                    directory = %directory,
                    schedule = %name,
                    group = %self.config.group_name,
                    "directory schedule deleted"
                );
                Ok(())
            }
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(classify("DeleteSchedule", &e)),
        }
    }

    async fn schedule_once(
        &self,
        request: &SyncRequest,
        at: OffsetDateTime,
    ) -> Result<OnceOutcome, SchedulerError> {
        let name = once_schedule_name(request, at);
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| rejected(format!("incomplete flexible window: {e}")))?;
        let result = self
            .client
            .create_schedule()
            .group_name(&self.config.group_name)
            .name(&name)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone(TIME_ZONE)
            .flexible_time_window(window)
            .state(ScheduleState::Enabled)
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(self.target(request)?)
            .send()
            .await;
        let outcome = match result {
            Ok(_) => OnceOutcome::Created,
            Err(e) if error_code(&e) == Some("ConflictException") => OnceOutcome::AlreadyScheduled,
            Err(e) => return Err(classify("CreateSchedule", &e)),
        };
        tracing::info!(
            directory = %request.directory_id,
            mode = request.mode.as_str(),
            schedule = %name,
            group = %self.config.group_name,
            at = %at,
            outcome = ?outcome,
            "one-time run scheduled"
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::SyncMode;
    use time::macros::datetime;

    fn valid_name(name: &str) -> bool {
        (1..=MAX_NAME_LEN).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }

    fn request(id: &str, mode: SyncMode) -> SyncRequest {
        SyncRequest {
            directory_id: DirectoryId::parse(id).unwrap(),
            mode,
        }
    }

    const AT: OffsetDateTime = datetime!(2026-11-23 10:41:05 UTC);

    #[test]
    fn one_time_names_are_valid_readable_and_carry_directory_mode_and_minute() {
        let name = once_schedule_name(&request("acme-eu", SyncMode::Incremental), AT);
        assert_eq!(name, "once.incremental.20261123T1041.acme-eu");
        assert!(valid_name(&name));
        let same_minute = once_schedule_name(
            &request("acme-eu", SyncMode::Incremental),
            AT + time::Duration::seconds(30),
        );
        assert_eq!(name, same_minute);
        let other_offset = once_schedule_name(
            &request("acme-eu", SyncMode::Incremental),
            AT.to_offset(time::macros::offset!(+2)),
        );
        assert_eq!(name, other_offset, "names are in UTC whatever the offset");
    }

    #[test]
    fn long_ids_get_distinct_valid_hashed_names() {
        let a = "a".repeat(63) + "1";
        let b = "a".repeat(63) + "2";
        let name_a = once_schedule_name(&request(&a, SyncMode::Incremental), AT);
        let name_b = once_schedule_name(&request(&b, SyncMode::Incremental), AT);
        assert_ne!(name_a, name_b);
        for n in [&name_a, &name_b] {
            assert!(valid_name(n), "{n} ({} chars)", n.len());
            assert!(n.starts_with("once.incremental.20261123T1041.aaaaaaaa."));
        }
        let recurring = directory_schedule_name(&DirectoryId::parse(a).unwrap());
        assert!(valid_name(&recurring));
        assert!(
            !recurring.contains('.'),
            "recurring names never meet one-time ones"
        );
    }

    #[test]
    fn rates_round_trip_and_use_the_singular_for_one_minute() {
        assert_eq!(rate_expression(1), "rate(1 minute)");
        assert_eq!(rate_expression(30), "rate(30 minutes)");
        for m in [1, 5, 30, 1440] {
            assert_eq!(parse_rate(&rate_expression(m)), Some(m));
        }
        assert_eq!(parse_rate("rate(2 hours)"), Some(120));
        assert_eq!(parse_rate("rate(1 day)"), Some(1440));
        assert_eq!(parse_rate("cron(0 * * * ? *)"), None);
        assert_eq!(parse_rate("rate(5 weeks)"), None);
    }

    #[test]
    fn only_silence_throttling_and_internal_errors_are_retryable() {
        for code in [
            None,
            Some("ThrottlingException"),
            Some("InternalServerException"),
        ] {
            assert!(from_code(code, "op".into()).is_retryable(), "{code:?}");
        }
        for code in [
            "ResourceNotFoundException",
            "ValidationException",
            "AccessDeniedException",
            "ServiceQuotaExceededException",
        ] {
            let err = from_code(Some(code), "op".into());
            assert!(matches!(err, SchedulerError::Rejected { .. }), "{code}");
        }
    }

    #[test]
    fn at_expressions_are_utc_whole_seconds() {
        let at = (AT + time::Duration::milliseconds(700)).to_offset(time::macros::offset!(-5));
        assert_eq!(at_expression(at), "at(2026-11-23T10:41:05)");
    }
}
