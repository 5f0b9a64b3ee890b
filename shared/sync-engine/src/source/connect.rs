//! Connecting a directory to BambooHR's push side: registering a permissioned,
//! event-based webhook through BambooHR's webhooks API and keeping the private key it
//! returns (BambooHR shows it only once) in the directory's secret.

use std::time::Duration as StdDuration;

use std::collections::BTreeSet;

use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions, FieldInfo, NewWebhook};
use domain::{Directory, DirectoryId, RegisteredWebhook};
use secrecy::ExposeSecret;
use tracing::info;

use crate::deps::Engine;
use crate::error::{ConnectProblem, EngineError};
use crate::source::client::bamboohr_client;

/// The event-based events the webhook subscribes to: ids only, resolved by a fetch.
pub const WEBHOOK_EVENTS: [&str; 3] = ["employee.created", "employee.updated", "employee.deleted"];

/// How many webhook keys stay active, so a re-registration rotates without downtime.
pub const ACTIVE_KEYS: usize = 2;

/// Shortest BambooHR webhook key accepted (registered or imported): BambooHR's keys
/// are long random strings, and a short one would make signatures guessable.
pub const MIN_WEBHOOK_KEY_CHARS: usize = 16;

/// The BambooHR fields a directory's sync uses, in the employee endpoint's vocabulary:
/// every field the mapping reads, the extra and custom fields, the group sources and
/// the fields targets filter on (a custom attribute by the BambooHR field it comes
/// from). A change to any of them must fire the webhook.
pub fn wanted_monitor_fields(directory: &Directory) -> BTreeSet<String> {
    let mut wanted: BTreeSet<String> = mapping::employee_endpoint_fields()
        .into_iter()
        .map(str::to_string)
        .collect();
    wanted.extend(directory.extra_fields.iter().cloned());
    wanted.extend(directory.custom_field_map.keys().cloned());
    wanted.extend(directory.group_sources.iter().map(|g| g.field.clone()));
    for target in &directory.targets {
        for field in target.filter.field_in.keys() {
            let source = directory
                .custom_field_map
                .iter()
                .find(|(_, attribute)| *attribute == field)
                .map(|(bamboohr, _)| bamboohr.clone());
            wanted.insert(source.unwrap_or_else(|| field.clone()));
        }
    }
    wanted
}

/// Whether `name` names `field` of the company: by alias, id or display name.
pub fn names_field(field: &FieldInfo, name: &str) -> bool {
    field.alias.as_deref() == Some(name) || field.id == name || field.name == name
}

/// The monitor-field list for `directory`: each wanted field BambooHR allows a webhook
/// to monitor, named as `monitor_fields` names it (alias, else id). Wanted fields it
/// does not list are left out: BambooHR refuses a webhook naming them.
pub async fn monitor_fields_for(
    client: &BambooClient,
    directory: &Directory,
) -> Result<Vec<String>, EngineError> {
    let allowed = client.monitor_fields().await?;
    let mut out: Vec<String> = wanted_monitor_fields(directory)
        .iter()
        .filter_map(|name| allowed.iter().find(|f| names_field(f, name)))
        .map(|f| f.alias.clone().unwrap_or_else(|| f.id.clone()))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// Registers an event-based webhook posting to `webhook_url`, monitoring every field
/// the directory's sync uses ([`monitor_fields_for`]), and stores its private key as
/// the directory's newest webhook key (the previous newest stays active for the
/// rotation; older ones are retired) and the webhook in the directory record.
pub async fn register_event_webhook(
    engine: &Engine,
    directory_id: &DirectoryId,
    webhook_url: &str,
) -> Result<RegisteredWebhook, EngineError> {
    let directory = engine
        .store
        .get_directory(directory_id)
        .await?
        .ok_or_else(|| EngineError::DirectoryNotFound(directory_id.clone()))?;
    let client = bamboohr_client(engine, &directory).await?;
    let monitor = monitor_fields_for(&client, &directory).await?;
    let created = client
        .create_webhook(&NewWebhook {
            name: format!("bamboohr-sync {directory_id}"),
            url: webhook_url.to_string(),
            events: WEBHOOK_EVENTS.iter().map(|s| s.to_string()).collect(),
            monitor_fields: monitor.clone(),
            post_fields: Vec::new(),
        })
        .await?;
    if created.private_key.expose_secret().trim().chars().count() < MIN_WEBHOOK_KEY_CHARS {
        // An empty or short key would make every signature forgeable; the webhook
        // stays at BambooHR, unusable, for the operator to delete.
        return Err(EngineError::Connect(ConnectProblem::Unreachable {
            subdomain: directory.subdomain.clone(),
            reason: format!(
                "BambooHR registered webhook {} without a usable private key",
                created.id
            ),
        }));
    }
    let mut secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Webhook])
        .await?;
    secrets.key_added_at.insert(
        ports::key_id(&created.private_key),
        engine.clock.now().unix_timestamp(),
    );
    secrets.webhook_keys.insert(0, created.private_key);
    secrets.webhook_keys.truncate(ACTIVE_KEYS);
    secrets.forget_retired_keys();
    engine
        .secrets
        .put_parts(
            &directory.secret_name,
            &[ports::SecretPart::Webhook],
            &secrets,
        )
        .await?;
    let registered = RegisteredWebhook {
        id: created.id,
        url: webhook_url.to_string(),
        monitor_fields: monitor,
    };
    let mut d = directory;
    let expected = d.version;
    d.webhook = Some(registered.clone());
    d.version += 1;
    engine.store.put_directory(&d, Some(expected)).await?;
    info!(directory_id = %directory_id, webhook_id = %registered.id,
          monitor_fields = registered.monitor_fields.len(), "BambooHR webhook registered");
    Ok(registered)
}

/// Brings the registered webhook's monitor fields in step with `directory`'s settings
/// and targets (`PUT /api/v1/webhooks/{id}`; its key stays). Returns the new list when
/// it changed, `None` when the directory has no webhook or the list is unchanged.
pub async fn refresh_monitor_fields(
    engine: &Engine,
    directory: &Directory,
) -> Result<Option<Vec<String>>, EngineError> {
    let Some(hook) = &directory.webhook else {
        return Ok(None);
    };
    let client = bamboohr_client(engine, directory).await?;
    let monitor = monitor_fields_for(&client, directory).await?;
    if monitor == hook.monitor_fields {
        return Ok(None);
    }
    client
        .update_webhook(
            &hook.id,
            &NewWebhook {
                name: format!("bamboohr-sync {}", directory.id),
                url: hook.url.clone(),
                events: WEBHOOK_EVENTS.iter().map(|s| s.to_string()).collect(),
                monitor_fields: monitor.clone(),
                post_fields: Vec::new(),
            },
        )
        .await?;
    let id = directory.id.clone();
    for _ in 0..4 {
        let Some(mut d) = engine.store.get_directory(&id).await? else {
            break;
        };
        let expected = d.version;
        if let Some(h) = d.webhook.as_mut() {
            h.monitor_fields = monitor.clone();
        }
        d.version += 1;
        match engine.store.put_directory(&d, Some(expected)).await {
            Ok(()) => break,
            Err(ports::StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    info!(directory_id = %id, monitor_fields = monitor.len(), "webhook monitor fields updated");
    Ok(Some(monitor))
}

/// The company's fields (`GET /api/v1/meta/fields`), with the directory's credential.
pub async fn company_fields(
    engine: &Engine,
    directory: &Directory,
) -> Result<Vec<FieldInfo>, EngineError> {
    let client = bamboohr_client(engine, directory).await?;
    Ok(client.meta_fields().await?)
}

/// The company's fields, read without ever refreshing an OAuth token: for a reader
/// that may not write the credential back (the setup page), which must not use up a
/// refresh token whose successor it could not keep. An expired access token fails
/// the read; the poller's next run refreshes it.
pub async fn company_fields_read_only(
    engine: &Engine,
    directory: &Directory,
) -> Result<Vec<FieldInfo>, EngineError> {
    let secrets = engine
        .secrets
        .get_parts(&directory.secret_name, &[ports::SecretPart::Bamboohr])
        .await?;
    let auth = match (&secrets.bamboohr_api_key, &secrets.oauth) {
        (Some(key), _) => Auth::ApiKey(key.clone()),
        (None, Some(o)) => Auth::Bearer(o.access_token.clone()),
        (None, None) => {
            return Err(EngineError::MissingCredential {
                id: directory.id.clone(),
                what: "BambooHR API key or OAuth token",
            })
        }
    };
    let client = BambooClient::new(
        &directory.bamboohr_base_url(),
        auth,
        ClientOptions {
            block_private: engine.outbound.block_private,
            ..ClientOptions::default()
        },
    )?;
    Ok(client.meta_fields().await?)
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
/// `block_private`: refuse private, loopback and link-local addresses (a deployed stack).
pub async fn validate_credentials(
    subdomain: &str,
    base_url: &str,
    auth: Auth,
    block_private: bool,
) -> Result<u64, EngineError> {
    let opts = ClientOptions {
        block_private,
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
        // Throttled until the budget ran out is throttled, however it ended.
        let e = match e {
            BambooError::BudgetExceeded { last, .. }
                if matches!(*last, BambooError::RateLimited { .. }) =>
            {
                *last
            }
            other => other,
        };
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
            BambooError::RateLimited { retry_after } => ConnectProblem::RateLimited {
                subdomain,
                retry_after_seconds: retry_after.map(|d| d.as_secs()),
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

/// What BambooHR's token endpoint answered an authorization code.
pub enum CodeExchange {
    /// The company's first OAuth tokens, with the client that obtained them (so the
    /// sync can refresh them).
    Tokens(ports::OAuthTokens),
    /// Refused: the code expired, was used already, or was issued for another client or
    /// redirect URI. Nothing was obtained.
    Refused,
}

/// Exchanges the authorization code the company's admin brought back from BambooHR's
/// consent page (`<base_url>/authorize.php`) at its token endpoint, as `client`.
pub async fn exchange_authorization_code(
    engine: &Engine,
    subdomain: &str,
    base_url: &str,
    code: &secrecy::SecretString,
    redirect_uri: &str,
    client: &crate::operate::OAuthClient,
) -> Result<CodeExchange, EngineError> {
    let opts = ClientOptions {
        block_private: engine.outbound.block_private,
        timeout: StdDuration::from_secs(15),
        ..ClientOptions::default()
    };
    match BambooClient::exchange_authorization_code(
        base_url,
        opts,
        code,
        redirect_uri,
        &client.client_id,
        &client.client_secret,
    )
    .await
    {
        Ok(tokens) => Ok(CodeExchange::Tokens(ports::OAuthTokens {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at.map(|t| t.unix_timestamp()),
            client_id: Some(client.client_id.clone()),
            client_secret: Some(client.client_secret.clone()),
        })),
        Err(BambooError::Unauthorized) => Ok(CodeExchange::Refused),
        Err(e) => Err(EngineError::Connect(ConnectProblem::Unreachable {
            subdomain: subdomain.to_string(),
            reason: e.to_string(),
        })),
    }
}
