//! Shared setup of the integration tests: an SDK config aimed at this process's moto,
//! and unique resource names so tests in parallel threads and processes never meet.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_adapters::{clients, create_audit_table, create_evidence_table, create_table, DynamoStore};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

/// The SDK config every test uses: moto's endpoint, us-east-1, static test credentials.
/// Product code receives an `SdkConfig` the same way and never knows it is moto.
pub async fn sdk() -> SdkConfig {
    let moto = test_peers::moto();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}

/// A name no other test (in this or another process) uses: `<prefix>-<pid>-<n>-<t>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh table with the store's schema, fresh audit and evidence tables, and a
/// store on them (as the functions are configured: audit entries and evidence rows
/// in their own put-only tables).
pub async fn store() -> DynamoStore {
    let sdk = sdk().await;
    let client = clients::dynamodb(&sdk);
    let table = unique("bsync-test");
    create_table(&client, &table).await.expect("table created");
    let audit = format!("{table}-audit");
    create_audit_table(&client, &audit)
        .await
        .expect("audit table created");
    let evidence = format!("{table}-evidence");
    create_evidence_table(&client, &evidence)
        .await
        .expect("evidence table created");
    DynamoStore::from_client(client, table)
        .with_audit_table(audit)
        .with_evidence_table(evidence)
}
