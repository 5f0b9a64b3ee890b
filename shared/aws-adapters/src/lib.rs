//! AWS implementations of the ports: [`DynamoStore`] (`ports::Store` on one DynamoDB
//! table), [`SecretsManagerStore`] (`ports::SecretStore`), [`EventBridgeBus`]
//! (`ports::EventBus`, the customers' bus), [`SqsChangeNotices`] (`ports::EventBus`,
//! the dispatcher's change queue), [`EventBridgeScheduler`] (`ports::Scheduler`) and the
//! SQS helpers the dispatcher side and tests use.
//!
//! Every adapter is built from an `aws_config::SdkConfig` the caller loaded, so product
//! code never knows whether it talks to AWS or to moto. Each SDK client gets the
//! timeouts and bounded, jittered retries of [`clients`], so no external call can hang
//! or retry forever. Adapters return the ports' error types; nothing here logs a secret
//! or a user's field values (ids, counts and reasons only).
//!
//! The `testing` feature adds what only tests, benchmarks and tools use (creating the
//! tables, bulk-loading users); the Lambdas are built without it.

mod batching;
pub mod change_notices;
pub mod clients;
pub mod customer_bus;
pub mod dynamo;
pub mod eventbridge;
pub mod kms;
pub mod scheduler;
pub mod secrets;
pub mod sqs;

pub use change_notices::{message_group, SqsChangeNotices, DEFAULT_LANES, MAX_LANES};
pub use customer_bus::CustomerEventBus;
#[cfg(feature = "testing")]
pub use dynamo::{create_audit_table, create_evidence_table, create_table};
pub use dynamo::{DynamoStore, FINGERPRINT_INDEX, MAX_EVENTS_PER_WRITE};
pub use eventbridge::{EventBridgeBus, EVENT_SOURCE, MAX_ENTRY_BYTES};
pub use kms::KmsEnvelopeSealer;
pub use scheduler::{EventBridgeScheduler, EventBridgeSchedulerConfig};
pub use secrets::{SecretAccessPolicy, SecretsManagerStore, PART_TAG};
pub use sqs::{delete_batch, move_messages, receive_batch, SqsRetryQueue};
