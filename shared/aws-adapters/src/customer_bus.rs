//! [`CustomerEventBus`]: `ports::ForeignBus` on EventBridge, for the EventBridge target
//! kind: one PutEvents entry per change, on the customer's bus named by ARN, with
//! `Source` = [`crate::EVENT_SOURCE`], `DetailType` the event type and `Detail` the
//! `ChangeEvent` JSON (exactly what app webhooks receive as their body).
//!
//! The IAM role allows only the bus ARNs the operator listed at deploy time, so an
//! `AccessDeniedException` means "not allowed" and is permanent.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use domain::ChangeEvent;
use ports::{ForeignBus, ForeignBusError};

use crate::clients;

/// Per-entry and call error codes a retry cannot fix.
const PERMANENT: &[&str] = &[
    "MalformedDetail",
    "InvalidArgument",
    "ValidationException",
    "AccessDeniedException",
    "ResourceNotFoundException",
    "NotAuthorizedForSourceException",
    "NotAuthorizedForDetailTypeException",
];

/// Re-publishes to customers' buses.
pub struct CustomerEventBus {
    client: Client,
}

impl CustomerEventBus {
    /// A publisher with the project's timeouts and bounded retries.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: clients::eventbridge(sdk),
        }
    }
}

fn judged(code: &str, reason: String) -> ForeignBusError {
    ForeignBusError {
        reason,
        retryable: !PERMANENT.contains(&code),
    }
}

#[async_trait]
impl ForeignBus for CustomerEventBus {
    async fn put(&self, bus_arn: &str, event: &ChangeEvent) -> Result<(), ForeignBusError> {
        let detail = serde_json::to_string(event).map_err(|e| ForeignBusError {
            reason: format!("cannot serialize the event: {e}"),
            retryable: false,
        })?;
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(bus_arn)
            .source(crate::EVENT_SOURCE)
            .detail_type(event.event_type.as_str())
            .detail(detail)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| {
                let code = e.code().unwrap_or("").to_string();
                judged(&code, clients::sdk_reason("PutEvents", &e))
            })?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().first();
            let code = failed.and_then(|e| e.error_code()).unwrap_or("unknown");
            return Err(judged(code, format!("PutEvents refused the entry: {code}")));
        }
        tracing::debug!(event_id = %event.id, "event re-published to a customer bus");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_a_retry_cannot_fix_are_permanent_and_throttling_is_retried() {
        assert!(!judged("AccessDeniedException", String::new()).retryable);
        assert!(!judged("ResourceNotFoundException", String::new()).retryable);
        assert!(!judged("MalformedDetail", String::new()).retryable);
        assert!(judged("ThrottlingException", String::new()).retryable);
        assert!(judged("InternalException", String::new()).retryable);
        assert!(judged("", "transport error".into()).retryable);
    }
}
