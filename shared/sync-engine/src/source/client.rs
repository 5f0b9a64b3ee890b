//! What every sync mode shares: the directory's BambooHR client and the fields and
//! mapping settings it syncs with. The run modes that use them are reconcile's.

use std::sync::Arc;

use bamboohr_client::{BambooClient, ClientOptions};
use domain::{Directory, DirectoryId, DirectoryState};
use mapping::MappingConfig;
use serde::Serialize;

use crate::deps::Engine;
use crate::error::EngineError;
use crate::source::credentials::{bamboohr_auth, SecretTokenSink};

/// One employee the run could not apply, and why (never the field values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    /// BambooHR employee id as sent.
    pub employee_id: String,
    /// Why it was skipped.
    pub reason: String,
}

/// The mapping settings of a directory. The raw attributes kept beyond the mapped
/// fields are its configured allowlist, else its extra fields and group sources.
pub fn mapping_config(directory: &Directory) -> MappingConfig {
    let raw_allowlist = directory
        .raw_attribute_allowlist
        .clone()
        .unwrap_or_else(|| {
            directory
                .extra_fields
                .iter()
                .cloned()
                .chain(directory.group_sources.iter().map(|g| g.field.clone()))
                .collect()
        });
    MappingConfig {
        custom_field_map: directory.custom_field_map.clone(),
        aliases: directory.field_aliases.clone(),
        raw_allowlist,
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
    // Only the BambooHR credential, the part a sync needs (the poller's role may read
    // no webhook key).
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Bamboohr])
        .await?;
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
        ClientOptions {
            block_private: engine.outbound.block_private,
            ..ClientOptions::default()
        },
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
