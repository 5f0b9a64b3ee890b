//! SDK clients with this project's timeout and retry policy.
//!
//! Every call gets a connect timeout, a per-attempt timeout and a whole-operation
//! timeout, and the SDK's *standard* retry mode: exponential backoff with full jitter,
//! bounded attempts, and a client-side retry quota that stops retry storms when a
//! service is down. The values fit a Lambda invocation: an operation gives up after
//! 15 s, well inside the functions' timeouts, so a failure is reported and retried by
//! the caller (outbox, SQS redelivery) rather than hanging.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;

/// Time to establish a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time for one attempt, including reading the response.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole operation, retries and backoff included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Attempts per operation (the first call and two retries).
pub const MAX_ATTEMPTS: u32 = 3;

/// The timeouts above.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Standard retry mode with [`MAX_ATTEMPTS`]; the short first backoff suits
/// DynamoDB-style throttling, the cap keeps the total under [`OPERATION_TIMEOUT`].
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(2))
}

/// A DynamoDB client with the project's policy.
pub fn dynamodb(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// A Secrets Manager client with the project's policy.
pub fn secrets_manager(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    let conf = aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(conf)
}

/// A KMS client with the project's policy.
pub fn kms(sdk: &SdkConfig) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// An EventBridge client with the project's policy.
pub fn eventbridge(sdk: &SdkConfig) -> aws_sdk_eventbridge::Client {
    let conf = aws_sdk_eventbridge::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_eventbridge::Client::from_conf(conf)
}

/// An SQS client with the project's policy. Long polls get a longer attempt timeout
/// per call (see [`crate::sqs::receive_batch`]).
pub fn sqs(sdk: &SdkConfig) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// An EventBridge Scheduler client with the project's policy.
pub fn scheduler(sdk: &SdkConfig) -> aws_sdk_scheduler::Client {
    let conf = aws_sdk_scheduler::config::Builder::from(sdk)
        .timeout_config(timeout_config())
        .retry_config(retry_config())
        .build();
    aws_sdk_scheduler::Client::from_conf(conf)
}

/// A short reason naming the operation and the service's error code. Service messages
/// are kept (they describe the request, not item values); transport errors keep their
/// chain. Every SDK's `SdkError` and `ProvideErrorMetadata` are the same smithy types.
pub fn sdk_reason<E, R>(op: &str, err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => format!(
            "{op}: {} ({})",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("no message")
        ),
        None => format!(
            "{op}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(err)
        ),
    }
}
