//! CloudWatch Embedded Metric Format: the one document shape every function prints as a
//! stdout line (Lambda's log capture turns it into metrics). Callers name their
//! dimension sets, the properties the dimensions and Logs Insights read, and the
//! metrics with their values; ids ride along as properties, never as dimensions, so
//! the metric count does not grow with directories.

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// One metric of a document.
#[derive(Debug, Clone, Copy)]
pub struct Metric<'a> {
    /// The metric's name.
    pub name: &'a str,
    /// CloudWatch's unit name (`Count`, `Milliseconds`, ...).
    pub unit: &'a str,
    /// The value.
    pub value: i128,
}

impl<'a> Metric<'a> {
    /// A `Count` metric.
    pub fn count(name: &'a str, value: u64) -> Self {
        Self {
            name,
            unit: "Count",
            value: i128::from(value),
        }
    }
}

/// An EMF document stamped `at`: `properties` (an object; non-objects add nothing)
/// plus one top-level member per metric.
pub fn document(
    namespace: &str,
    at: OffsetDateTime,
    dimensions: &[&[&str]],
    properties: Value,
    metrics: &[Metric<'_>],
) -> Value {
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.unix_timestamp_nanos() / 1_000_000,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimensions,
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({"Name": m.name, "Unit": m.unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    if let Value::Object(props) = properties {
        doc.extend(props);
    }
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_each_metric_and_carries_its_value_beside_the_properties() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let doc = document(
            "ns",
            at,
            &[&["Target"], &[]],
            json!({"Target": "app", "DirectoryId": "acme"}),
            &[
                Metric::count("Delivered", 3),
                Metric {
                    name: "Took",
                    unit: "Milliseconds",
                    value: 12,
                },
            ],
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_800_000_000_000i64);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "ns");
        assert_eq!(declared["Dimensions"], json!([["Target"], []]));
        assert_eq!(
            declared["Metrics"],
            json!([{"Name": "Delivered", "Unit": "Count"}, {"Name": "Took", "Unit": "Milliseconds"}])
        );
        assert_eq!(doc["Delivered"], 3);
        assert_eq!(doc["Took"], 12);
        assert_eq!(doc["Target"], "app");
        assert_eq!(doc["DirectoryId"], "acme");
    }
}
