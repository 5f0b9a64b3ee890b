//! `directories ...`: connect a BambooHR company, re-authenticate it, list and show
//! directories, change their sync settings, pause, resume and revoke them, and manage
//! their BambooHR webhook and its keys; each through the admin API.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{Args, Subcommand};
use domain::{Directory, MissingUserPolicy};
use ports::KeyInfo;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use super::args::{dir_id, state_name, usage};
use super::secret::{read_secret, SecretSource};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table, when};
use crate::stack::Stack;

/// Environment variable holding the BambooHR API key for `directories connect`.
pub const API_KEY_ENV: &str = "BAMBOOHR_API_KEY";
/// Environment variable holding the OAuth access token for `directories connect --oauth`.
pub const ACCESS_TOKEN_ENV: &str = "BAMBOOHR_ACCESS_TOKEN";
/// Environment variable holding the OAuth refresh token.
pub const REFRESH_TOKEN_ENV: &str = "BAMBOOHR_REFRESH_TOKEN";
/// Environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_ENV: &str = "BAMBOOHR_CLIENT_SECRET";

/// `directories ...`
#[derive(Debug, Subcommand)]
pub enum DirectoriesCmd {
    /// Connect a BambooHR company: the API key is read from $BAMBOOHR_API_KEY or stdin
    /// and checked with a real BambooHR call before anything is saved.
    Connect(ConnectArgs),
    /// Every directory.
    List,
    /// One directory's settings and state.
    Show {
        /// Directory id.
        directory: String,
    },
    /// Replace the BambooHR credential (read as for `connect`), checked first.
    Reauth(ReauthArgs),
    /// Change sync settings (asks for a full reconciliation).
    Update(UpdateArgs),
    /// Register a BambooHR webhook posting to this stack (or --url), monitoring every
    /// field the sync uses; its key becomes the newest accepted one.
    RegisterWebhook {
        /// Directory id.
        directory: String,
        /// Where BambooHR posts instead of the stack's own webhook URL.
        #[arg(long)]
        url: Option<String>,
    },
    /// The BambooHR webhook keys a directory accepts (ids and ages only).
    WebhookKeys {
        /// Directory id.
        directory: String,
    },
    /// Accept the private key of a webhook an admin created in BambooHR (read from
    /// $BAMBOOHR_WEBHOOK_KEY or stdin).
    ImportWebhookKey {
        /// Directory id.
        directory: String,
        /// Where the key comes from.
        #[command(flatten)]
        secret: SecretSource,
    },
    /// Stop accepting one webhook key.
    RetireWebhookKey {
        /// Directory id.
        directory: String,
        /// The key's id (from `webhook-keys`).
        key: String,
    },
    /// Stop syncing (schedule disabled, webhooks answered 503, which BambooHR retries).
    Pause {
        /// Directory id.
        directory: String,
    },
    /// Sync again after a pause.
    Resume {
        /// Directory id.
        directory: String,
    },
    /// Disconnect: deletes the schedule and the credentials; history is kept.
    Revoke {
        /// Directory id.
        directory: String,
    },
}

/// `directories connect`
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Directory id to create (letters, digits, dashes).
    #[arg(long = "id")]
    pub directory: String,
    /// BambooHR company subdomain (`acme` of acme.bamboohr.com).
    #[arg(long)]
    pub subdomain: String,
    /// BambooHR base URL instead of https://<subdomain>.bamboohr.com.
    #[arg(long)]
    pub base_url: Option<String>,
    /// IANA time zone of the company.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Register a BambooHR event webhook posting to this stack's webhook URL.
    #[arg(long)]
    pub register_webhook: bool,
    /// Register the webhook posting to this URL instead (implies --register-webhook).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// Connect with OAuth tokens instead of an API key: the access token is read from
    /// $BAMBOOHR_ACCESS_TOKEN (or stdin); with $BAMBOOHR_REFRESH_TOKEN, this client
    /// id and $BAMBOOHR_CLIENT_SECRET the tokens are refreshed as they expire.
    #[arg(long)]
    pub oauth: bool,
    /// The OAuth client id (not a secret).
    #[arg(long, requires = "oauth")]
    pub oauth_client_id: Option<String>,
    /// Where the API key (or the OAuth access token) comes from.
    #[command(flatten)]
    pub secret: SecretSource,
}

/// `directories reauth`
#[derive(Debug, Args)]
pub struct ReauthArgs {
    /// Directory id.
    pub directory: String,
    /// Use OAuth tokens ($BAMBOOHR_ACCESS_TOKEN, ...) instead of an API key.
    #[arg(long)]
    pub oauth: bool,
    /// The OAuth client id (not a secret).
    #[arg(long, requires = "oauth")]
    pub oauth_client_id: Option<String>,
    /// Where the API key (or the OAuth access token) comes from.
    #[command(flatten)]
    pub secret: SecretSource,
}

/// Environment variable holding a BambooHR webhook key for `import-webhook-key`.
pub const WEBHOOK_KEY_ENV: &str = "BAMBOOHR_WEBHOOK_KEY";

/// `directories update`
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Directory id.
    pub directory: String,
    /// Minutes between incremental runs.
    #[arg(long)]
    pub every_minutes: Option<u32>,
    /// Hours between full reconciliations.
    #[arg(long)]
    pub full_every_hours: Option<u32>,
    /// Extra BambooHR fields to fetch (repeat; replaces the list).
    #[arg(long = "extra-field")]
    pub extra_fields: Vec<String>,
    /// Custom field map entry `bamboohrField=attribute` (repeat; replaces the map).
    #[arg(long = "custom-field")]
    pub custom_fields: Vec<String>,
    /// A field groups come from (repeat; replaces the list).
    #[arg(long = "group-source")]
    pub group_sources: Vec<String>,
    /// Safeguard: largest share (0-1) of users one run may deactivate or delete.
    #[arg(long)]
    pub safeguard_max_share: Option<f64>,
    /// Safeguard: below this many deactivations the share is not checked.
    #[arg(long)]
    pub safeguard_min_count: Option<u32>,
    /// Safeguard: minutes over which webhook deactivations are counted together.
    #[arg(long)]
    pub safeguard_window_minutes: Option<u32>,
    /// Minutes without a successful sync before the directory is stale.
    #[arg(long)]
    pub stale_after_minutes: Option<u32>,
    /// IANA time zone.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Field alias `Name in webhooks=fieldKey` for field-based webhooks whose admin
    /// chose display names (repeat; replaces the map).
    #[arg(long = "field-alias")]
    pub field_aliases: Vec<String>,
    /// Days before the hire date a future hire becomes active.
    #[arg(long)]
    pub pre_start_days: Option<u32>,
    /// What happens to users missing from a complete listing.
    #[arg(long, value_parser = ["deactivate", "delete", "ignore"])]
    pub missing_users: Option<String>,
    /// A BambooHR field kept in users' raw attributes besides the mapped ones (repeat;
    /// replaces the allowlist). Anything else BambooHR sends is dropped.
    #[arg(long = "raw-attribute", conflicts_with = "default_raw_attributes")]
    pub raw_attributes: Vec<String>,
    /// Go back to the default raw-attribute allowlist (extra fields and group sources).
    #[arg(long)]
    pub default_raw_attributes: bool,
    /// Days back the evidence's onboarding completion rate counts hires (default 30).
    #[arg(long)]
    pub onboarding_window_days: Option<u32>,
    /// A named set of settings applied first (flags given beside it win):
    /// `daily-evidence` syncs once a day and is stale after two days.
    #[arg(long, value_parser = ["daily-evidence"])]
    pub preset: Option<String>,
}

/// The credential body (`apiKey` or `oauth`) from the environment or stdin.
fn credential_body(
    oauth: bool,
    client_id: Option<String>,
    source: &SecretSource,
    input: &mut dyn BufRead,
) -> Result<Value, CliError> {
    if oauth {
        let access = read_secret(source, ACCESS_TOKEN_ENV, "OAuth access token", input)?;
        let env_secret = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_string())
        };
        Ok(json!({"oauth": {
            "accessToken": access.expose_secret(),
            "refreshToken": env_secret(REFRESH_TOKEN_ENV),
            "clientId": client_id,
            "clientSecret": env_secret(CLIENT_SECRET_ENV),
        }}))
    } else {
        let key: SecretString = read_secret(source, API_KEY_ENV, "BambooHR API key", input)?;
        Ok(json!({"apiKey": key.expose_secret()}))
    }
}

fn pairs(
    entries: &[String],
    flag: &str,
    shape: &str,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut map = BTreeMap::new();
    for entry in entries {
        let Some((k, v)) = entry.split_once('=') else {
            return Err(usage(format!("{flag} {entry:?}: write {shape}")));
        };
        map.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(map)
}

fn print_keys(o: &mut dyn Write, keys: &[KeyInfo]) -> std::io::Result<()> {
    crate::output::key_table(o, "KEY", keys, ["newest", "older"])
}

/// Runs a `directories` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: DirectoriesCmd,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    let api = &stack.client;
    match cmd {
        DirectoriesCmd::Connect(a) => {
            let id = dir_id(&a.directory)?;
            let mut body = credential_body(a.oauth, a.oauth_client_id.clone(), &a.secret, input)?;
            body["id"] = json!(id);
            body["subdomain"] = json!(a.subdomain);
            body["baseUrl"] = json!(a.base_url);
            body["timeZone"] = json!(a.time_zone);
            body["registerWebhook"] = json!(a.register_webhook || a.webhook_url.is_some());
            body["webhookUrl"] = json!(a.webhook_url);
            let outcome = api.post("/admin/directories", &body).await?;
            let path = format!("/webhooks/bamboohr/{id}");
            let webhook_url = outcome["webhookUrl"].as_str().map(str::to_string);
            emit(out, mode, &outcome, |o| {
                writeln!(
                    o,
                    "{} {} ({} employees visible); first sync: full",
                    if outcome["reauthenticated"] == true {
                        "re-authenticated"
                    } else {
                        "connected"
                    },
                    id,
                    outcome["employees"]
                )?;
                match (outcome["webhookId"].as_str(), &outcome["directory"]["webhook"]["url"], &webhook_url) {
                    (Some(wid), Value::String(url), _) => {
                        writeln!(o, "BambooHR webhook {wid} registered, posting to {url}")
                    }
                    (None, _, Some(url)) => writeln!(o, "webhook URL to give BambooHR: {url}"),
                    _ => writeln!(
                        o,
                        "webhook URL to give BambooHR: <webhook endpoint>{path} (the dev stack prints its endpoint)"
                    ),
                }
            })
        }
        DirectoriesCmd::Reauth(a) => {
            let id = dir_id(&a.directory)?;
            let body = credential_body(a.oauth, a.oauth_client_id.clone(), &a.secret, input)?;
            let outcome = api
                .post(&format!("/admin/directories/{id}/credentials"), &body)
                .await?;
            emit(out, mode, &outcome, |o| {
                writeln!(
                    o,
                    "re-authenticated {id} ({} employees visible); next sync: full",
                    outcome["employees"]
                )
            })
        }
        DirectoriesCmd::RegisterWebhook { directory, url } => {
            let id = dir_id(&directory)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/webhook"),
                    &json!({"url": url}),
                )
                .await?;
            emit(out, mode, &r, |o| {
                writeln!(
                    o,
                    "{id}: BambooHR webhook {} posting to {}, monitoring {} fields; key {}",
                    r["webhook"]["id"].as_str().unwrap_or_default(),
                    r["webhook"]["url"].as_str().unwrap_or_default(),
                    r["webhook"]["monitorFields"].as_array().map_or(0, Vec::len),
                    r["keyId"].as_str().unwrap_or_default()
                )
            })
        }
        DirectoriesCmd::WebhookKeys { directory } => {
            let id = dir_id(&directory)?;
            let keys: Vec<KeyInfo> = api
                .list(&format!("/admin/directories/{id}/webhook-keys"), &[])
                .await?;
            emit(out, mode, &keys, |o| print_keys(o, &keys))
        }
        DirectoriesCmd::ImportWebhookKey { directory, secret } => {
            let id = dir_id(&directory)?;
            let key = read_secret(&secret, WEBHOOK_KEY_ENV, "BambooHR webhook key", input)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/webhook-keys"),
                    &json!({"key": key.expose_secret()}),
                )
                .await?;
            let keys: Vec<KeyInfo> = serde_json::from_value(r["keys"].clone()).unwrap_or_default();
            emit(out, mode, &keys, |o| print_keys(o, &keys))
        }
        DirectoriesCmd::RetireWebhookKey { directory, key } => {
            let id = dir_id(&directory)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/webhook-keys/{key}/retire"),
                    &json!({}),
                )
                .await?;
            let keys: Vec<KeyInfo> = serde_json::from_value(r["keys"].clone()).unwrap_or_default();
            emit(out, mode, &keys, |o| print_keys(o, &keys))
        }
        DirectoriesCmd::List => {
            let all: Vec<Directory> = api.list("/admin/directories", &[]).await?;
            emit(out, mode, &all, |o| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.to_string(),
                            d.subdomain.clone(),
                            state_name(d.state).into(),
                            d.targets.len().to_string(),
                            when(d.last_success),
                            when(d.deleted_at),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &[
                        "DIRECTORY",
                        "SUBDOMAIN",
                        "STATE",
                        "TARGETS",
                        "LAST SUCCESS",
                        "REVOKED AT",
                    ],
                    &rows,
                )
            })
        }
        DirectoriesCmd::Show { directory } => {
            let id = dir_id(&directory)?;
            let d: Directory = api.get(&format!("/admin/directories/{id}"), &[]).await?;
            emit(out, mode, &d, |o| {
                writeln!(o, "directory      {}", d.id)?;
                writeln!(o, "subdomain      {}", d.subdomain)?;
                writeln!(o, "state          {}", state_name(d.state))?;
                writeln!(
                    o,
                    "schedule       every {} min, full every {} h",
                    d.schedule.incremental_every_minutes, d.schedule.full_every_hours
                )?;
                writeln!(o, "time zone      {}", d.time_zone)?;
                writeln!(
                    o,
                    "safeguard      max {:.0}% (from {} users; webhooks over {} min)",
                    d.safeguard.max_share * 100.0,
                    d.safeguard.min_count,
                    d.safeguard.window_minutes
                )?;
                writeln!(o, "stale after    {} min", d.stale_threshold_minutes())?;
                writeln!(
                    o,
                    "group sources  {}",
                    d.group_sources
                        .iter()
                        .map(|g| g.field.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                writeln!(o, "extra fields   {}", d.extra_fields.join(", "))?;
                writeln!(
                    o,
                    "raw attributes {}",
                    d.raw_attribute_allowlist.as_ref().map_or(
                        "default (mapped, extra and group-source fields)".to_string(),
                        |l| { format!("mapped fields and {}", l.join(", ")) }
                    )
                )?;
                writeln!(o, "targets        {}", d.targets.len())?;
                writeln!(o, "connected at   {}", when(d.connected_at))?;
                if d.deleted_at.is_some() {
                    // History is kept for the stack's retention window from here.
                    writeln!(o, "revoked at     {}", when(d.deleted_at))?;
                }
                writeln!(o, "last success   {}", when(d.last_success))
            })
        }
        DirectoriesCmd::Update(a) => {
            let id = dir_id(&a.directory)?;
            let mut body = json!({
                "incrementalEveryMinutes": a.every_minutes,
                "fullEveryHours": a.full_every_hours,
                "staleAfterMinutes": a.stale_after_minutes,
                "timeZone": a.time_zone,
                "safeguardMaxShare": a.safeguard_max_share,
                "safeguardMinCount": a.safeguard_min_count,
                "safeguardWindowMinutes": a.safeguard_window_minutes,
                "preStartDays": a.pre_start_days,
                "onboardingWindowDays": a.onboarding_window_days,
                "preset": a.preset.as_ref().map(|p| p.replace('-', "_")),
            });
            if let Some(m) = &a.missing_users {
                let policy: MissingUserPolicy = serde_json::from_value(json!(m)).map_err(|_| {
                    usage(format!(
                        "--missing-users {m:?}: deactivate, delete or ignore"
                    ))
                })?;
                body["missingUsers"] = json!(policy);
            }
            if !a.extra_fields.is_empty() {
                body["extraFields"] = json!(a.extra_fields);
            }
            if !a.group_sources.is_empty() {
                body["groupSources"] = json!(a.group_sources);
            }
            if !a.custom_fields.is_empty() {
                body["customFieldMap"] = json!(pairs(
                    &a.custom_fields,
                    "--custom-field",
                    "bamboohrField=attribute"
                )?);
            }
            if !a.field_aliases.is_empty() {
                body["fieldAliases"] = json!(pairs(
                    &a.field_aliases,
                    "--field-alias",
                    "Name in webhooks=fieldKey"
                )?);
            }
            // Unset flags are left out: the API changes only the settings given.
            if let Value::Object(m) = &mut body {
                m.retain(|_, v| !v.is_null());
            }
            if !a.raw_attributes.is_empty() {
                body["rawAttributeAllowlist"] = json!(a.raw_attributes);
            } else if a.default_raw_attributes {
                // null: back to the default (a missing field leaves it as it is).
                body["rawAttributeAllowlist"] = Value::Null;
            }
            let r = api
                .post(&format!("/admin/directories/{id}/settings"), &body)
                .await?;
            emit(out, mode, &r, |o| {
                let changed: Vec<&String> = r["changed"]
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                if changed.is_empty() {
                    return writeln!(o, "{id}: settings unchanged");
                }
                writeln!(
                    o,
                    "{id}: settings saved ({}); the next run is a full sync",
                    changed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                if r["monitorFields"]["result"] == "failed" {
                    writeln!(
                        o,
                        "warning: the BambooHR webhook's monitored fields were not updated: {}",
                        r["monitorFields"]["detail"].as_str().unwrap_or_default()
                    )?;
                }
                Ok(())
            })
        }
        DirectoriesCmd::Pause { directory } => {
            let id = dir_id(&directory)?;
            let d = api
                .post(&format!("/admin/directories/{id}/pause"), &json!({}))
                .await?;
            emit(out, mode, &d, |o| writeln!(o, "{id}: paused"))
        }
        DirectoriesCmd::Resume { directory } => {
            let id = dir_id(&directory)?;
            let d = api
                .post(&format!("/admin/directories/{id}/resume"), &json!({}))
                .await?;
            emit(out, mode, &d, |o| writeln!(o, "{id}: active"))
        }
        DirectoriesCmd::Revoke { directory } => {
            let id = dir_id(&directory)?;
            let d = api
                .post(&format!("/admin/directories/{id}/revoke"), &json!({}))
                .await?;
            emit(out, mode, &d, |o| {
                writeln!(
                    o,
                    "{id}: revoked; schedule and credentials deleted, history kept"
                )
            })
        }
    }
}
