//! Webhook metrics in CloudWatch Embedded Metric Format: one document per request
//! (the handler prints it as one stdout line when the function has a metrics
//! namespace), counting the delivery as accepted or rejected and why, and the change
//! events it published.
//!
//! `Reason` is a small closed set: `applied`, `deferred` (left to the poller or held
//! by the safeguard for an operator),
//! `duplicate`, or the error code of a refusal (`bad_signature`, `stale_timestamp`,
//! `directory_paused`, `malformed_payload`, ...). Dimension sets: `Reason` and none
//! (totals). The directory id is a property, not a dimension. Nothing of the payload
//! is in the document.

use function_support::emf::{self, Metric};
use serde_json::{json, Value};
use sync_engine::ingest::IngestReport;
use time::OffsetDateTime;

/// The metric names, in document order.
pub const METRICS: [&str; 6] = [
    "WebhooksAccepted",
    "WebhooksRejected",
    "WebhookEventsPublished",
    "WebhookRefreshRequests",
    // Entries older than the stored change (acknowledged, not applied).
    "WebhookStaleEntries",
    // Deactivations and deletions the safeguard held for an operator.
    "WebhookHeldRemovals",
];

/// How one request ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// Accepted (2xx), with what the engine did.
    Accepted(&'a IngestReport),
    /// Refused or failed, with the error code the response carried.
    Rejected(&'a str),
}

/// The request's EMF document, stamped `at`; `directory` when the path named one.
pub fn webhook_metrics_emf(
    namespace: &str,
    directory: Option<&str>,
    outcome: Outcome<'_>,
    at: OffsetDateTime,
) -> Value {
    let (reason, values) = match outcome {
        Outcome::Accepted(report) => {
            let reason = if report.duplicate {
                "duplicate"
            } else if report.is_deferred() {
                "deferred"
            } else {
                "applied"
            };
            (
                reason,
                [
                    1,
                    0,
                    report.events_published as u64,
                    report.refresh_requested as u64,
                    report.stale as u64,
                    report.held as u64,
                ],
            )
        }
        Outcome::Rejected(code) => (code, [0, 1, 0, 0, 0, 0]),
    };
    let metrics: Vec<Metric<'_>> = METRICS
        .iter()
        .zip(values)
        .map(|(name, value)| Metric::count(name, value))
        .collect();
    emf::document(
        namespace,
        at,
        &[&["Reason"], &[]],
        json!({"Reason": reason, "DirectoryId": directory}),
        &metrics,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn check_shape(doc: &Value) {
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
    }

    #[test]
    fn an_applied_delivery_counts_as_accepted_with_the_events_it_published() {
        let report = IngestReport {
            updated: 2,
            events_published: 3,
            ..IngestReport::default()
        };
        let doc = webhook_metrics_emf(
            "bamboohr-sync/test",
            Some("acme"),
            Outcome::Accepted(&report),
            at(),
        );
        check_shape(&doc);
        assert_eq!(doc["Reason"], "applied");
        assert_eq!(doc["WebhooksAccepted"], 1);
        assert_eq!(doc["WebhooksRejected"], 0);
        assert_eq!(doc["WebhookEventsPublished"], 3);
        assert_eq!(doc["DirectoryId"], "acme");
    }

    #[test]
    fn event_based_and_repeated_deliveries_are_told_apart() {
        let deferred = IngestReport {
            refresh_requested: 4,
            ..IngestReport::default()
        };
        let doc = webhook_metrics_emf(
            "bamboohr-sync/test",
            Some("acme"),
            Outcome::Accepted(&deferred),
            at(),
        );
        assert_eq!(doc["Reason"], "deferred");
        assert_eq!(doc["WebhookRefreshRequests"], 4);
        let held = IngestReport {
            stale: 1,
            held: 2,
            ..IngestReport::default()
        };
        let doc = webhook_metrics_emf(
            "bamboohr-sync/test",
            Some("acme"),
            Outcome::Accepted(&held),
            at(),
        );
        assert_eq!(doc["Reason"], "deferred", "held for an operator");
        assert_eq!(doc["WebhookStaleEntries"], 1);
        assert_eq!(doc["WebhookHeldRemovals"], 2);
        let duplicate = IngestReport {
            duplicate: true,
            ..IngestReport::default()
        };
        let doc = webhook_metrics_emf(
            "bamboohr-sync/test",
            Some("acme"),
            Outcome::Accepted(&duplicate),
            at(),
        );
        assert_eq!(doc["Reason"], "duplicate");
    }

    #[test]
    fn a_refusal_counts_as_rejected_under_its_error_code() {
        let doc = webhook_metrics_emf(
            "bamboohr-sync/test",
            None,
            Outcome::Rejected("bad_signature"),
            at(),
        );
        check_shape(&doc);
        assert_eq!(doc["Reason"], "bad_signature");
        assert_eq!(doc["WebhooksRejected"], 1);
        assert_eq!(doc["WebhooksAccepted"], 0);
        assert!(doc["DirectoryId"].is_null());
    }
}
