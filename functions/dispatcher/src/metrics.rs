//! Delivery metrics in CloudWatch Embedded Metric Format, one document per target a
//! batch touched (the handler prints each as one stdout line, which Lambda's log
//! capture turns into metrics): deliveries by outcome (delivered, skipped, failed,
//! handed to the retry path, dead-lettered) and the retry attempts among them.
//!
//! Dimension sets: `Target` (the target id: per-target series) and none (stack
//! totals, which the dashboard charts). The directory id rides along as a property,
//! so the metric count does not grow with directories. No event content, user data
//! or failure reason is in a document: reasons are in the delivery log.

use std::collections::BTreeMap;

use domain::{DirectoryId, TargetId};
use function_support::emf::{self, Metric};
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::TargetOutcome;
use time::OffsetDateTime;

/// The metric names, in document order.
pub const METRICS: [&str; 6] = [
    "DeliveriesDelivered",
    "DeliveriesSkipped",
    "DeliveriesFailed",
    "DeliveryRetriesScheduled",
    "DeliveriesDeadLettered",
    "DeliveryRetryAttempts",
];

/// Counts of one target in one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetTally {
    /// Accepted by the target.
    pub delivered: u64,
    /// Not sent, on purpose (filter, ledger).
    pub skipped: u64,
    /// Failed for good (or failed retryably with no retry path).
    pub failed: u64,
    /// Failed and handed to the retry queue.
    pub scheduled: u64,
    /// Failed their last retry and went to the dead-letter queue.
    pub dead_lettered: u64,
    /// Attempts that came from the retry queue (a subset of the above).
    pub retry_attempts: u64,
}

/// What a batch did, per (directory, target).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchMetrics {
    /// Counts per directory and target.
    pub targets: BTreeMap<(DirectoryId, TargetId), TargetTally>,
}

impl BatchMetrics {
    /// Counts one outcome at `target`; `retry` when the attempt came from the retry
    /// queue.
    pub fn record(
        &mut self,
        directory: &DirectoryId,
        target: &TargetId,
        outcome: &TargetOutcome,
        retry: bool,
    ) {
        let t = self
            .targets
            .entry((directory.clone(), target.clone()))
            .or_default();
        match outcome {
            TargetOutcome::Delivered { .. } => t.delivered += 1,
            TargetOutcome::Skipped { .. } => t.skipped += 1,
            TargetOutcome::Scheduled { .. } => t.scheduled += 1,
            // The engine reports a dead-lettered delivery as a final failure whose
            // reason says so (`…; dead-lettered after N attempts`).
            TargetOutcome::Failed { reason, .. } if reason.contains("dead-lettered after") => {
                t.dead_lettered += 1
            }
            TargetOutcome::Failed { .. } => t.failed += 1,
        }
        if retry {
            t.retry_attempts += 1;
        }
    }

    /// Adds `other`'s counts (a lane's) to these.
    pub fn merge(&mut self, other: BatchMetrics) {
        for (key, t) in other.targets {
            let mine = self.targets.entry(key).or_default();
            mine.delivered += t.delivered;
            mine.skipped += t.skipped;
            mine.failed += t.failed;
            mine.scheduled += t.scheduled;
            mine.dead_lettered += t.dead_lettered;
            mine.retry_attempts += t.retry_attempts;
        }
    }

    /// The EMF documents of the batch, one per target, stamped `at`.
    pub fn emf(&self, namespace: &str, at: OffsetDateTime) -> Vec<Value> {
        self.targets
            .iter()
            .map(|((directory, target), t)| {
                let values = [
                    t.delivered,
                    t.skipped,
                    t.failed,
                    t.scheduled,
                    t.dead_lettered,
                    t.retry_attempts,
                ];
                let metrics: Vec<Metric<'_>> = METRICS
                    .iter()
                    .zip(values)
                    .map(|(name, value)| Metric::count(name, value))
                    .collect();
                emf::document(
                    namespace,
                    at,
                    &[&["Target"], &[]],
                    json!({"Target": target, "DirectoryId": directory}),
                    &metrics,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> (DirectoryId, TargetId) {
        (
            DirectoryId::parse("acme").unwrap(),
            TargetId::parse(s).unwrap(),
        )
    }

    #[test]
    fn each_target_gets_one_document_counting_its_outcomes_without_reasons() {
        let (dir, app) = id("app");
        let (_, scim) = id("scim");
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut m = BatchMetrics::default();
        let delivered = TargetOutcome::Delivered {
            status: 204,
            version: 3,
        };
        m.record(&dir, &app, &delivered, false);
        m.record(&dir, &app, &delivered, true);
        m.record(
            &dir,
            &app,
            &TargetOutcome::Skipped {
                reason: "filter: department is not Sales".into(),
            },
            false,
        );
        m.record(
            &dir,
            &scim,
            &TargetOutcome::Scheduled {
                reason: "503".into(),
                retries: 0,
                next_attempt_at: at,
            },
            false,
        );
        m.record(
            &dir,
            &scim,
            &TargetOutcome::Failed {
                reason: "503; dead-lettered after 11 attempts".into(),
                retryable: false,
            },
            true,
        );
        m.record(
            &dir,
            &scim,
            &TargetOutcome::Failed {
                reason: "400".into(),
                retryable: false,
            },
            false,
        );

        let docs = m.emf("bamboohr-sync/test", at);
        assert_eq!(docs.len(), 2);
        let app_doc = &docs[0];
        assert_eq!(app_doc["Target"], "app");
        assert_eq!(app_doc["DeliveriesDelivered"], 2);
        assert_eq!(app_doc["DeliveriesSkipped"], 1);
        assert_eq!(app_doc["DeliveryRetryAttempts"], 1);
        let scim_doc = &docs[1];
        assert_eq!(scim_doc["DeliveryRetriesScheduled"], 1);
        assert_eq!(scim_doc["DeliveriesDeadLettered"], 1);
        assert_eq!(scim_doc["DeliveriesFailed"], 1);
        assert_eq!(scim_doc["DirectoryId"], "acme");
        for doc in &docs {
            let spec = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(spec["Namespace"], "bamboohr-sync/test");
            assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_000i64);
            for metric in spec["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(doc[name].is_u64(), "{name} has a value");
            }
            for dims in spec["Dimensions"].as_array().unwrap() {
                for d in dims.as_array().unwrap() {
                    assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d} set");
                }
            }
            let text = doc.to_string();
            assert!(
                !text.contains("Sales") && !text.contains("503"),
                "no reasons"
            );
        }
    }

    #[test]
    fn a_batch_that_delivered_nothing_writes_no_document() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert!(BatchMetrics::default().emf("ns", at).is_empty());
    }
}
