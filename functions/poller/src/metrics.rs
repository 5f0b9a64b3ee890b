//! The poller's metrics: one CloudWatch Embedded Metric Format document per run, and
//! one per stale sweep (the gauge of stale directories the stale alarm watches).

use domain::{RunStatus, SyncRun};
use function_support::emf;
use serde_json::json;
use time::OffsetDateTime;

/// The run's figures as one CloudWatch Embedded Metric Format document (the caller
/// writes it as one line to stdout, where Lambda's log capture turns it into metrics):
/// users by outcome, events published, BambooHR requests and throttles, the sync
/// duration and whether it failed, dimensioned by mode and status. The directory id
/// rides along as a property (searchable in Logs Insights, not a dimension, so
/// metric count does not grow with directories). No secret and no HR value is in it.
pub fn run_metrics_emf(namespace: &str, run: &SyncRun) -> serde_json::Value {
    let c = &run.counts;
    let finished = run.finished_at.unwrap_or(run.started_at);
    let duration_ms = (finished - run.started_at).whole_milliseconds().max(0);
    let counts: [(&str, u64); 10] = [
        ("UsersSeen", c.seen),
        ("UsersCreated", c.created),
        ("UsersUpdated", c.updated),
        ("UsersDeactivated", c.deactivated),
        ("UsersDeleted", c.deleted),
        ("UsersUnchanged", c.unchanged),
        ("UsersSkipped", c.skipped),
        ("EventsPublished", c.events_published),
        ("BambooHrRequests", c.bamboohr_requests),
        ("BambooHrThrottles", c.bamboohr_throttles),
    ];
    let mut metrics: Vec<emf::Metric<'_>> = counts
        .iter()
        .map(|(name, value)| emf::Metric::count(name, *value))
        .collect();
    metrics.push(emf::Metric {
        name: "SyncDuration",
        unit: "Milliseconds",
        value: duration_ms,
    });
    metrics.push(emf::Metric::count(
        "SyncFailed",
        u64::from(run.status == RunStatus::Failed),
    ));
    emf::document(
        namespace,
        finished,
        &[&["Mode"], &["Mode", "Status"]],
        json!({
            "Mode": run.mode.as_str(),
            "Status": serde_json::to_value(run.status).expect("a status serializes"),
            "DirectoryId": run.directory_id,
            "RunId": run.id,
        }),
        &metrics,
    )
}

/// The sweep's gauge as one EMF document: `StaleDirectories`, how many directories
/// are stale at `at`, newly or still. It is written at every sweep, zero included, so
/// the alarm on its maximum stays in ALARM while any directory is stale and returns to
/// OK at the first sweep after they all synced (a count of newly stale directories
/// would clear the alarm one sweep after it fired).
pub fn sweep_metrics_emf(namespace: &str, at: OffsetDateTime, stale: u64) -> serde_json::Value {
    emf::document(
        namespace,
        at,
        &[&[]],
        json!({"Sweep": "stale"}),
        &[emf::Metric::count("StaleDirectories", stale)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{DirectoryId, RunId, SyncMode};
    use time::{Duration, OffsetDateTime};

    #[test]
    fn the_emf_document_names_every_metric_it_carries_and_no_user_data() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut run = SyncRun::start(
            RunId::new(at, 7),
            DirectoryId::parse("acme").unwrap(),
            SyncMode::Full,
            at,
        );
        run.status = RunStatus::Completed;
        run.finished_at = Some(at + Duration::milliseconds(1500));
        run.counts.seen = 10;
        run.counts.created = 2;
        run.counts.bamboohr_throttles = 1;
        run.skip("42", "no work email");

        let doc = run_metrics_emf("bamboohr-sync/test", &run);
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "bamboohr-sync/test");
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_001_500i64);
        let metrics = spec["Metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 12);
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} has a value");
        }
        for dims in spec["Dimensions"].as_array().unwrap() {
            for d in dims.as_array().unwrap() {
                assert!(doc[d.as_str().unwrap()].is_string(), "dimension {d} set");
            }
        }
        assert_eq!(doc["SyncDuration"], 1500);
        assert_eq!(doc["UsersCreated"], 2);
        assert_eq!(doc["BambooHrThrottles"], 1);
        assert_eq!(doc["SyncFailed"], 0);
        assert_eq!(doc["Mode"], "full");
        // Skipped records (employee ids and reasons) stay out of metrics.
        assert!(!doc.to_string().contains("no work email"));
    }
}
