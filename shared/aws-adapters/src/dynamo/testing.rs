//! Helpers for tests, benchmarks and tools, compiled only with the `testing` feature so
//! no Lambda carries them: creating the tables as infra/template.yaml declares them
//! (deployed stacks get theirs from the template), and loading users in bulk.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use domain::DirectoryUser;
use ports::StoreError;

use super::codec::user_item;
use super::keys::{
    EXPIRES_AT, FINGERPRINT_INDEX, FP, GSI1PK, GSI1SK, LIFECYCLE, PK, SK, STATE, VERSION,
};
use super::ops::{built, unavailable};
use super::DynamoStore;

impl DynamoStore {
    /// Writes users as they are, unconditionally and without events, with
    /// BatchWriteItem (unprocessed items re-sent with backoff, a bounded number of
    /// times). For loading a table in benchmarks, never for syncing: it bypasses the
    /// version check and the outbox.
    pub async fn import_users(&self, users: &[DirectoryUser]) -> Result<(), StoreError> {
        let puts = users
            .iter()
            .map(|u| {
                Ok(WriteRequest::builder()
                    .put_request(built(
                        PutRequest::builder().set_item(Some(user_item(u)?)).build(),
                    )?)
                    .build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(puts).await
    }
}

/// A string key attribute's definition.
fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    built(
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build(),
    )
}

/// One element of a key schema.
fn key_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    built(
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build(),
    )
}

/// Sends a CreateTable (an existing table counts as done) and waits until the table
/// is active; true when this call created it.
async fn create_and_wait(
    client: &Client,
    name: &str,
    request: CreateTableFluentBuilder,
) -> Result<bool, StoreError> {
    let fresh = match request.send().await {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            false
        }
        Err(e) => return Err(unavailable(name, "CreateTable", &e)),
    };
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| StoreError::Unavailable {
            reason: format!("waiting for table {name}: {}", DisplayErrorContext(&e)),
        })?;
    Ok(fresh)
}

/// Creates the audit table as infra/template.yaml declares it (keys `pk`, `sk`, on
/// demand, no TTL) and waits until it is active; an existing table is left as it is.
pub async fn create_audit_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let request = client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest);
    create_and_wait(client, name, request).await?;
    Ok(())
}

/// Creates the evidence table as infra/template.yaml declares it (keys `pk`, `sk`, on
/// demand, no TTL: the audit table's shape) and waits until it is active; an
/// existing table is left as it is.
pub async fn create_evidence_table(client: &Client, name: &str) -> Result<(), StoreError> {
    create_audit_table(client, name).await
}

/// Creates the store's table as the SAM template defines it (pk/sk strings, the sparse
/// [`FINGERPRINT_INDEX`] projecting `version`, `fp`, `state`, `lc`, on-demand billing,
/// TTL on `expiresAt`) and waits until it is ACTIVE. An existing table is left as it
/// is. For tests, benchmarks and tools; deployed stacks get the table from the template.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let index = built(
        GlobalSecondaryIndex::builder()
            .index_name(FINGERPRINT_INDEX)
            .key_schema(key_element(GSI1PK, KeyType::Hash)?)
            .key_schema(key_element(GSI1SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::Include)
                    .non_key_attributes(VERSION)
                    .non_key_attributes(FP)
                    .non_key_attributes(STATE)
                    .non_key_attributes(LIFECYCLE)
                    .build(),
            )
            .build(),
    )?;
    let request = client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1PK)?)
        .attribute_definitions(string_attribute(GSI1SK)?)
        .key_schema(key_element(PK, KeyType::Hash)?)
        .key_schema(key_element(SK, KeyType::Range)?)
        .global_secondary_indexes(index)
        .billing_mode(BillingMode::PayPerRequest);
    let fresh = create_and_wait(client, name, request).await?;
    if fresh {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(built(
                TimeToLiveSpecification::builder()
                    .attribute_name(EXPIRES_AT)
                    .enabled(true)
                    .build(),
            )?)
            .send()
            .await
            .map_err(|e| unavailable(name, "UpdateTimeToLive", &e))?;
    }
    tracing::info!(table = name, created = fresh, "table ready");
    Ok(())
}
