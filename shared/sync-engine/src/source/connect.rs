//! Connecting a directory to BambooHR's push side: registering a permissioned,
//! event-based webhook through BambooHR's webhooks API and keeping the private key it
//! returns (BambooHR shows it only once) in the directory's secret.

use std::time::Duration as StdDuration;

use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions, NewWebhook};
use domain::DirectoryId;
use tracing::info;

use crate::deps::Engine;
use crate::error::{ConnectProblem, EngineError};
use crate::source::client::bamboohr_client;

/// The event-based events the webhook subscribes to: ids only, resolved by a fetch.
pub const WEBHOOK_EVENTS: [&str; 3] = ["employee.created", "employee.updated", "employee.deleted"];

/// Fields whose change fires `employee.updated` when the caller names none: what the
/// mapping turns into a DirectoryUser.
pub const DEFAULT_MONITOR_FIELDS: [&str; 12] = [
    "firstName",
    "lastName",
    "preferredName",
    "workEmail",
    "jobTitle",
    "department",
    "division",
    "location",
    "status",
    "hireDate",
    "terminationDate",
    "employeeNumber",
];

/// How many webhook keys stay active, so a re-registration rotates without downtime.
const ACTIVE_KEYS: usize = 2;

/// Registers an event-based webhook posting to `webhook_url` and stores its private
/// key as the directory's newest webhook key (the previous newest stays active for
/// the rotation). Returns BambooHR's webhook id.
pub async fn register_event_webhook(
    engine: &Engine,
    directory_id: &DirectoryId,
    webhook_url: &str,
    monitor_fields: &[String],
) -> Result<String, EngineError> {
    let directory = engine
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(directory_id.clone()))?;
    let client = bamboohr_client(engine, &directory).await?;
    let monitor = if monitor_fields.is_empty() {
        DEFAULT_MONITOR_FIELDS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        monitor_fields.to_vec()
    };
    let created = client
        .create_webhook(&NewWebhook {
            name: format!("bamboohr-sync {directory_id}"),
            url: webhook_url.to_string(),
            events: WEBHOOK_EVENTS.iter().map(|s| s.to_string()).collect(),
            monitor_fields: monitor,
            post_fields: Vec::new(),
        })
        .await?;
    let mut secrets = engine.secrets.get(&directory.secret_name).await?;
    secrets.webhook_keys.insert(0, created.private_key);
    secrets.webhook_keys.truncate(ACTIVE_KEYS);
    engine.secrets.put(&directory.secret_name, &secrets).await?;
    info!(directory_id = %directory_id, webhook_id = %created.id, "BambooHR webhook registered");
    Ok(created.id)
}

/// Fields a sync cannot do without: when BambooHR withholds one of them from the
/// credential, connecting fails with "missing permission".
pub const ESSENTIAL_FIELDS: [&str; 6] = [
    "firstName",
    "lastName",
    "email",
    "status",
    "hireDate",
    "terminationDate",
];

/// Checks credentials with one real BambooHR call: the first row of the employee
/// dataset with the essential fields. Returns how many employees BambooHR reports.
pub async fn validate_credentials(
    subdomain: &str,
    base_url: &str,
    auth: Auth,
) -> Result<u64, EngineError> {
    let opts = ClientOptions {
        timeout: StdDuration::from_secs(15),
        max_attempts: 3,
        budget: StdDuration::from_secs(45),
        ..ClientOptions::default()
    };
    let client = BambooClient::new(base_url, auth, opts)?;
    let mut fields = vec!["employeeId"];
    fields.extend(ESSENTIAL_FIELDS);
    let problem = |e: BambooError| -> EngineError {
        let subdomain = subdomain.to_string();
        EngineError::Connect(match e {
            BambooError::Unauthorized => ConnectProblem::BadApiKey { subdomain },
            BambooError::Forbidden { operation } => ConnectProblem::MissingPermission {
                subdomain,
                what: operation,
            },
            BambooError::NotFound { resource } => ConnectProblem::UnknownSubdomain {
                subdomain,
                detail: format!("{resource} not found"),
            },
            BambooError::Unavailable { reason, .. } if reason.contains("connection failed") => {
                ConnectProblem::UnknownSubdomain {
                    subdomain,
                    detail: reason,
                }
            }
            other => ConnectProblem::Unreachable {
                subdomain,
                reason: other.to_string(),
            },
        })
    };
    let page = client.dataset_page(&fields, 1, 1).await.map_err(problem)?;
    let withheld: Vec<&str> = page
        .employees
        .iter()
        .flat_map(|e| e.restricted.iter())
        .map(String::as_str)
        .filter(|f| ESSENTIAL_FIELDS.contains(f))
        .collect();
    if !withheld.is_empty() {
        return Err(EngineError::Connect(ConnectProblem::MissingPermission {
            subdomain: subdomain.to_string(),
            what: format!("the fields {}", withheld.join(", ")),
        }));
    }
    Ok(page.total_items)
}
