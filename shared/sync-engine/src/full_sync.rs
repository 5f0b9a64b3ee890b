//! Full reconciliation: every employee through the datasets API, compared with the
//! stored fingerprint projection, so an unchanged employee costs no item read, no
//! write and no event.

use std::collections::HashMap;
use std::sync::Arc;

use bamboohr_client::{BambooClient, ClientOptions};
use domain::{Directory, DirectoryId, DirectoryState, EmployeeId, Fingerprint};
use mapping::MappingConfig;
use ports::StoreError;
use serde::Serialize;
use tracing::{info, warn};

use crate::apply::{apply_full_record, ApplyOutcome};
use crate::credentials::{bamboohr_auth, SecretTokenSink};
use crate::deps::Engine;
use crate::error::EngineError;
use crate::outbox;

/// Rows per datasets page (the API allows up to 1000).
const PAGE_SIZE: u32 = 500;

/// One employee the run could not apply, and why (never the field values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// BambooHR employee id as sent.
    pub employee_id: String,
    /// Why it was skipped.
    pub reason: String,
}

/// What a sync run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Datasets pages read.
    pub pages: u32,
    /// Employees BambooHR listed.
    pub seen: usize,
    /// Users created.
    pub created: usize,
    /// Users changed.
    pub updated: usize,
    /// Users unchanged (no write, no event).
    pub unchanged: usize,
    /// Employees not applied, with reasons.
    pub skipped: Vec<Skipped>,
    /// Events published by this run (including outbox leftovers).
    pub events_published: usize,
    /// Events the bus refused; they stay in the outbox.
    pub events_failed: usize,
}

/// The mapping settings of a directory.
pub fn mapping_config(directory: &Directory) -> MappingConfig {
    MappingConfig {
        custom_field_map: directory.custom_field_map.clone(),
        aliases: directory.field_aliases.clone(),
    }
}

/// Loads a directory that may be synced now.
pub async fn load_active(engine: &Engine, id: &DirectoryId) -> Result<Directory, EngineError> {
    let directory = engine
        .store
        .get_directory(id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(id.clone()))?;
    let state = match directory.state {
        DirectoryState::Active => return Ok(directory),
        DirectoryState::Paused => "paused",
        DirectoryState::Held => "held",
        DirectoryState::Revoked => "revoked",
    };
    Err(EngineError::DirectoryNotActive {
        id: id.clone(),
        state,
    })
}

/// A BambooHR client for the directory, with its credential from the secret store.
pub async fn bamboohr_client(
    engine: &Engine,
    directory: &Directory,
) -> Result<BambooClient, EngineError> {
    let secrets = engine.secrets.get(&directory.secret_name).await?;
    // Refreshed OAuth tokens are written back to the directory's secret.
    let sink = Arc::new(SecretTokenSink::new(
        engine.secrets.clone(),
        directory.secret_name.clone(),
    ));
    let auth = bamboohr_auth(&secrets, None, Some(sink)).ok_or_else(|| {
        EngineError::MissingCredential {
            id: directory.id.clone(),
            what: "BambooHR API key or OAuth token",
        }
    })?;
    Ok(BambooClient::new(
        &directory.bamboohr_base_url(),
        auth,
        ClientOptions::default(),
    )?)
}

/// The dataset fields a directory needs: the standard set, then its extra and custom fields.
pub fn requested_fields(directory: &Directory) -> Vec<String> {
    let mut fields: Vec<String> = mapping::dataset_fields()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in directory
        .extra_fields
        .iter()
        .chain(directory.custom_field_map.keys())
    {
        if !fields.contains(f) {
            fields.push(f.clone());
        }
    }
    fields
}

/// Runs a full reconciliation of one directory.
pub async fn full_sync(engine: &Engine, id: &DirectoryId) -> Result<SyncReport, EngineError> {
    let directory = load_active(engine, id).await?;
    let mut report = SyncReport::default();

    // Leftovers of an earlier run go out first, so events stay in write order.
    let leftovers = outbox::flush(engine, id).await?;
    report.events_published += leftovers.published;

    let client = bamboohr_client(engine, &directory).await?;
    let stored: HashMap<EmployeeId, Fingerprint> = engine
        .store
        .user_fingerprints(id)
        .await?
        .into_iter()
        .map(|f| (f.employee_id, f.fingerprint))
        .collect();
    let cfg = mapping_config(&directory);
    let fields = requested_fields(&directory);
    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();

    let mut page = 1;
    loop {
        let batch = client.dataset_page(&field_refs, page, PAGE_SIZE).await?;
        report.pages += 1;
        for raw in &batch.employees {
            report.seen += 1;
            let record = match mapping::record_from_fields(
                &raw.id,
                &raw.fields,
                &raw.restricted,
                &cfg,
            ) {
                Ok(r) => r,
                Err(e) => {
                    warn!(directory_id = %id, employee_id = %raw.id, reason = %e, "employee skipped");
                    report.skipped.push(Skipped {
                        employee_id: raw.id.clone(),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let stored_fp = stored.get(&record.employee_id);
            match apply_full_record(engine, &directory, &record, stored_fp).await? {
                ApplyOutcome::Created => report.created += 1,
                ApplyOutcome::Updated => report.updated += 1,
                ApplyOutcome::Unchanged => report.unchanged += 1,
            }
        }
        if page >= batch.total_pages {
            break;
        }
        page += 1;
    }

    let flushed = outbox::flush(engine, id).await?;
    report.events_published += flushed.published;
    report.events_failed += flushed.failed;
    record_success(engine, id).await?;
    info!(
        directory_id = %id,
        pages = report.pages,
        seen = report.seen,
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        skipped = report.skipped.len(),
        events_published = report.events_published,
        "full sync finished"
    );
    Ok(report)
}

/// Stamps the directory's last success, re-reading on a conflicting settings change.
async fn record_success(engine: &Engine, id: &DirectoryId) -> Result<(), EngineError> {
    for _ in 0..4 {
        let Some(mut directory) = engine.store.get_directory(id).await? else {
            return Err(EngineError::DirectoryNotFound(id.clone()));
        };
        let now = engine.clock.now();
        let expected = directory.version;
        directory.version += 1;
        directory.last_success = Some(now);
        directory.cursors.last_full_sync = Some(now);
        match engine.store.put_directory(&directory, Some(expected)).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::TooManyConflicts {
        what: format!("directory {id}"),
        attempts: 4,
    })
}
