//! The depth of the stack's dead-letter queues, for the status route: deliveries that
//! failed every attempt (the delivery dead-letter queue) and changes the dispatcher
//! gave up on (the change dead-letter queue). SQS's `ApproximateNumberOfMessages` of
//! each, summed: the queues are the stack's, shared by every directory.
//!
//! The template passes the queue URLs in DEAD_LETTER_QUEUE_URLS (comma-separated); a
//! function without them reports no depth (`null`) rather than a made-up zero.

use aws_sdk_sqs::types::QueueAttributeName;

use crate::AdminError;

/// The queues to measure, or none.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterQueues {
    sqs: Option<(aws_sdk_sqs::Client, Vec<String>)>,
}

impl DeadLetterQueues {
    /// No queues: the status reports `deadLetterDepth: null`.
    pub fn none() -> Self {
        Self::default()
    }

    /// The SQS queues at `urls`.
    pub fn sqs(client: aws_sdk_sqs::Client, urls: Vec<String>) -> Self {
        Self {
            sqs: Some((client, urls)),
        }
    }

    /// The queues named in DEAD_LETTER_QUEUE_URLS (comma-separated), if it is set.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let urls: Vec<String> = std::env::var("DEAD_LETTER_QUEUE_URLS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        if urls.is_empty() {
            return Self::none();
        }
        Self::sqs(aws_adapters::clients::sqs(sdk), urls)
    }

    /// Messages waiting in all the queues, or `None` without queues. A queue that
    /// cannot be read fails the request (503): a status that silently says 0 dead
    /// letters while they pile up is worse than none.
    pub async fn depth(&self) -> Result<Option<u64>, AdminError> {
        let Some((sqs, urls)) = &self.sqs else {
            return Ok(None);
        };
        let mut total = 0u64;
        for url in urls {
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(|e| {
                    AdminError::Queue(aws_adapters::clients::sdk_reason("GetQueueAttributes", &e))
                })?;
            total += out
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        Ok(Some(total))
    }
}
