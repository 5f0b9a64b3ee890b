//! `directories ...`: connect a BambooHR company, list and show directories, change
//! their sync settings, pause, resume and revoke them.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{Args, Subcommand};
use domain::Safeguard;
use secrecy::SecretString;
use serde_json::json;
use sync_engine::operate::{self, ConnectRequest, Credential, SettingsChange};

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
    /// Change sync settings (asks for a full reconciliation).
    Update(UpdateArgs),
    /// Stop syncing (schedule disabled, webhooks answered 429).
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
    /// Register a BambooHR event webhook posting to this URL.
    #[arg(long)]
    pub register_webhook: Option<String>,
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
    /// Minutes without a successful sync before the directory is stale.
    #[arg(long)]
    pub stale_after_minutes: Option<u32>,
    /// IANA time zone.
    #[arg(long)]
    pub time_zone: Option<String>,
}

/// Runs a `directories` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: DirectoriesCmd,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    let engine = &stack.engine;
    let scheduler = stack.scheduler.as_ref();
    match cmd {
        DirectoriesCmd::Connect(a) => {
            let credential = if a.oauth {
                let access = read_secret(&a.secret, ACCESS_TOKEN_ENV, "OAuth access token", input)?;
                let env_secret = |name: &str| {
                    std::env::var(name)
                        .ok()
                        .filter(|v| !v.trim().is_empty())
                        .map(|v| SecretString::from(v.trim().to_string()))
                };
                Credential::OAuth(ports::OAuthTokens {
                    access_token: access,
                    refresh_token: env_secret(REFRESH_TOKEN_ENV),
                    expires_at: None,
                    client_id: a.oauth_client_id.clone(),
                    client_secret: env_secret(CLIENT_SECRET_ENV),
                })
            } else {
                Credential::ApiKey(read_secret(
                    &a.secret,
                    API_KEY_ENV,
                    "BambooHR API key",
                    input,
                )?)
            };
            let outcome = operate::connect(
                engine,
                scheduler,
                ConnectRequest {
                    directory_id: dir_id(&a.directory)?,
                    subdomain: a.subdomain,
                    base_url: a.base_url,
                    credential,
                    time_zone: a.time_zone,
                    register_webhook_at: a.register_webhook.clone(),
                },
                &stack.actor,
            )
            .await?;
            let path = format!("/webhooks/bamboohr/{}", outcome.directory.id);
            let webhook_url = stack
                .webhook_base_url
                .as_ref()
                .map(|base| format!("{base}{}", outcome.directory.id));
            emit(
                out,
                mode,
                &json!({"connect": outcome, "webhookPath": path, "webhookUrl": webhook_url}),
                |o| {
                    writeln!(
                        o,
                        "{} {} ({} employees visible); first sync: full",
                        if outcome.reauthenticated {
                            "re-authenticated"
                        } else {
                            "connected"
                        },
                        outcome.directory.id,
                        outcome.employees
                    )?;
                    match (&outcome.webhook_id, &a.register_webhook, &webhook_url) {
                        (Some(id), Some(url), _) => {
                            writeln!(o, "BambooHR webhook {id} registered, posting to {url}")
                        }
                        (None, _, Some(url)) => {
                            writeln!(o, "webhook URL to give BambooHR: {url}")
                        }
                        _ => writeln!(
                            o,
                            "webhook URL to give BambooHR: <webhook endpoint>{path} (the dev stack prints its endpoint)"
                        ),
                    }
                },
            )
        }
        DirectoriesCmd::List => {
            let all = engine.store.list_directories().await?;
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
            let d = operate::directory(engine, &dir_id(&directory)?).await?;
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
                    "safeguard      max {:.0}% (from {} users)",
                    d.safeguard.max_share * 100.0,
                    d.safeguard.min_count
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
            let mut change = SettingsChange {
                incremental_every_minutes: a.every_minutes,
                full_every_hours: a.full_every_hours,
                stale_after_minutes: a.stale_after_minutes,
                time_zone: a.time_zone,
                ..SettingsChange::default()
            };
            if !a.extra_fields.is_empty() {
                change.extra_fields = Some(a.extra_fields);
            }
            if !a.group_sources.is_empty() {
                change.group_sources = Some(a.group_sources);
            }
            if !a.custom_fields.is_empty() {
                let mut map = BTreeMap::new();
                for entry in &a.custom_fields {
                    let Some((k, v)) = entry.split_once('=') else {
                        return Err(usage(format!(
                            "--custom-field {entry:?}: write bamboohrField=attribute"
                        )));
                    };
                    map.insert(k.trim().to_string(), v.trim().to_string());
                }
                change.custom_field_map = Some(map);
            }
            if a.safeguard_max_share.is_some() || a.safeguard_min_count.is_some() {
                let current = operate::directory(engine, &id).await?.safeguard;
                change.safeguard = Some(Safeguard {
                    max_share: a.safeguard_max_share.unwrap_or(current.max_share),
                    min_count: a.safeguard_min_count.unwrap_or(current.min_count),
                });
            }
            let d = operate::update_settings(engine, scheduler, &id, &change, &stack.actor).await?;
            emit(out, mode, &d, |o| {
                writeln!(o, "{id}: settings saved; the next run is a full sync")
            })
        }
        DirectoriesCmd::Pause { directory } => {
            let d = operate::pause(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
            emit(out, mode, &d, |o| writeln!(o, "{}: paused", d.id))
        }
        DirectoriesCmd::Resume { directory } => {
            let d = operate::resume(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
            emit(out, mode, &d, |o| writeln!(o, "{}: active", d.id))
        }
        DirectoriesCmd::Revoke { directory } => {
            let d = operate::revoke(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
            emit(out, mode, &d, |o| {
                writeln!(
                    o,
                    "{}: revoked; schedule and credentials deleted, history kept",
                    d.id
                )
            })
        }
    }
}
