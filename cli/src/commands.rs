//! The operator commands: argument shapes (clap) and what each does, over
//! `sync_engine::admin` and the store. Secrets are read from stdin or an environment
//! variable, never from the command line, and never printed.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{Args, Subcommand, ValueEnum};
use domain::{
    DirectoryId, DirectoryState, EmployeeId, RunId, Safeguard, SyncMode, SyncRequest, Target,
    TargetFilter, TargetId, TargetKind,
};
use ports::{DeliveryQuery, DeliveryStatus, TargetSecrets};
use secrecy::SecretString;
use serde_json::json;
use sync_engine::admin::{self, ConnectRequest, Credential, SettingsChange, TargetSpec};
use sync_engine::run::{HoldDecision, RunOptions};
use sync_engine::EngineError;

use crate::output::{emit, spinner, table, when};
use crate::stack::Stack;
use crate::{Command, Output};

/// Why a command failed; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] ports::StoreError),
    /// Bad input.
    #[error("{0}")]
    Usage(String),
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The local stack failed.
    #[error("{0}")]
    Dev(#[from] crate::dev::DevError),
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn dir_id(s: &str) -> Result<DirectoryId, CliError> {
    DirectoryId::parse(s).map_err(|e| usage(format!("directory id {s:?}: {e}")))
}

fn target_id(s: &str) -> Result<TargetId, CliError> {
    TargetId::parse(s).map_err(|e| usage(format!("target id {s:?}: {e}")))
}

fn employee_id(s: &str) -> Result<EmployeeId, CliError> {
    EmployeeId::parse(s).map_err(|e| usage(format!("employee id {s:?}: {e}")))
}

/// Where a secret comes from: an environment variable (named by a flag, with a
/// default) or the first line of stdin.
#[derive(Debug, Args, Clone)]
pub struct SecretSource {
    /// Read the secret from the first line of stdin instead of the environment.
    #[arg(long)]
    pub secret_stdin: bool,
}

fn read_secret(
    source: &SecretSource,
    env_var: &str,
    what: &str,
    input: &mut dyn BufRead,
) -> Result<SecretString, CliError> {
    let value = if source.secret_stdin {
        let mut line = String::new();
        input.read_line(&mut line)?;
        line.trim().to_string()
    } else {
        std::env::var(env_var)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if value.is_empty() {
        return Err(usage(format!(
            "no {what}: set {env_var} or pass --secret-stdin and write it to stdin"
        )));
    }
    Ok(SecretString::from(value))
}

fn read_optional_secret(
    source: &SecretSource,
    env_var: &str,
    input: &mut dyn BufRead,
) -> Result<Option<SecretString>, CliError> {
    if source.secret_stdin || std::env::var(env_var).is_ok_and(|v| !v.trim().is_empty()) {
        read_secret(source, env_var, "secret", input).map(Some)
    } else {
        Ok(None)
    }
}

/// Environment variable holding the BambooHR API key for `directories connect`.
pub const API_KEY_ENV: &str = "BAMBOOHR_API_KEY";
/// Environment variable holding the OAuth access token for `directories connect --oauth`.
pub const ACCESS_TOKEN_ENV: &str = "BAMBOOHR_ACCESS_TOKEN";
/// Environment variable holding the OAuth refresh token.
pub const REFRESH_TOKEN_ENV: &str = "BAMBOOHR_REFRESH_TOKEN";
/// Environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_ENV: &str = "BAMBOOHR_CLIENT_SECRET";
/// Environment variable holding a target's secret (signing secret, bearer token or
/// URL parameter value) for `targets add|update`.
pub const TARGET_SECRET_ENV: &str = "BAMBOOHR_SYNC_TARGET_SECRET";

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

/// Kinds of target on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// Signed Standard Webhooks to your app (secret: a whsec_ signing secret).
    AppWebhook,
    /// SCIM 2.0 (secret: the bearer token).
    Scim,
    /// Litmos-style JSON upsert (secret: the value of --secret-param).
    HttpUpsert,
    /// A customer's EventBridge bus (no secret).
    EventBridge,
}

/// `targets ...`
#[derive(Debug, Subcommand)]
pub enum TargetsCmd {
    /// Add a target; its secret is read from $BAMBOOHR_SYNC_TARGET_SECRET or stdin.
    Add(TargetArgs),
    /// A directory's targets.
    List {
        /// Directory id.
        directory: String,
    },
    /// Replace a target's definition (and its secret when one is given).
    Update(TargetArgs),
    /// Remove a target and its secret.
    Remove {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
    },
    /// Send a signed ping (app webhook) or `GET /Users?count=1` (SCIM) and report.
    Test {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
    },
}

/// A target's definition on the command line.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Directory id.
    pub directory: String,
    /// Target id.
    #[arg(long = "id")]
    pub target: String,
    /// Kind.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// URL (app webhook, HTTP upsert), SCIM base URL, or bus ARN.
    #[arg(long)]
    pub url: String,
    /// Upsert body fields (repeat).
    #[arg(long = "field")]
    pub fields: Vec<String>,
    /// Upsert fields that must have a value (repeat).
    #[arg(long = "required")]
    pub required: Vec<String>,
    /// Name of the secret URL parameter of an HTTP upsert (e.g. `apikey`).
    #[arg(long)]
    pub secret_param: Option<String>,
    /// Only users in these states (repeat: pending, active, inactive, deleted).
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Create the target disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Where the secret comes from.
    #[command(flatten)]
    pub secret: SecretSource,
}

/// `sync`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Directory id.
    pub directory: String,
    /// A full reconciliation instead of an incremental run.
    #[arg(long)]
    pub full: bool,
}

/// `status`
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Directory id (every directory when omitted).
    pub directory: Option<String>,
}

/// `users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// A directory's users (ids, names, states).
    List {
        /// Directory id.
        directory: String,
        /// Only users in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// One user's fields, as synced.
    Show {
        /// Directory id.
        directory: String,
        /// BambooHR employee id.
        employee: String,
    },
}

/// `groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCmd {
    /// A directory's groups.
    List {
        /// Directory id.
        directory: String,
    },
}

/// `runs ...`
#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// The newest runs.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One run, with its skipped records and errors.
    Show {
        /// Directory id.
        directory: String,
        /// Run id.
        run: String,
    },
}

/// `deliveries ...`
#[derive(Debug, Subcommand)]
pub enum DeliveriesCmd {
    /// The latest delivery of each user to each target.
    List {
        /// Directory id.
        directory: String,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
        /// Only this user (user id `usr_...` or BambooHR employee id).
        #[arg(long)]
        user: Option<String>,
        /// Only this status (delivered, skipped, retrying, failed, dead_lettered).
        #[arg(long)]
        status: Option<String>,
    },
}

/// `replay ...`
#[derive(Debug, Subcommand)]
pub enum ReplayCmd {
    /// Put dead letters back on the retry path.
    DeadLetters {
        /// Directory the re-drive is audited under.
        #[arg(long)]
        directory: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        max: usize,
    },
    /// Re-send the current state of a directory (or one user) to a target.
    Push {
        /// Directory id.
        directory: String,
        /// Target id.
        #[arg(long)]
        target: String,
        /// Only this BambooHR employee.
        #[arg(long)]
        employee: Option<String>,
    },
}

/// `hold ...`
#[derive(Debug, Subcommand)]
pub enum HoldCmd {
    /// Apply what the safeguard held: the next run is a full one without it, once.
    Release {
        /// Directory id.
        directory: String,
    },
    /// Drop it: the next run decides afresh.
    Discard {
        /// Directory id.
        directory: String,
    },
}

/// `audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Newest entries first.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// `evidence ...`
#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Newest rows first, each marked stale when older than the stale threshold.
    List {
        /// Directory id.
        directory: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

/// Runs a command (every one but `dev`) against `stack`.
pub async fn execute(
    stack: &Stack,
    command: Command,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    match command {
        Command::Dev(_) => Err(usage("`dev` runs its own stack")),
        Command::Directories(c) => directories(stack, c, mode, out, input).await,
        Command::Targets(c) => targets(stack, c, mode, out, input).await,
        Command::Sync(a) => sync(stack, a, mode, out).await,
        Command::Status(a) => status(stack, a, mode, out).await,
        Command::Users(c) => users(stack, c, mode, out).await,
        Command::Groups(GroupsCmd::List { directory }) => {
            let id = dir_id(&directory)?;
            admin::directory(&stack.engine, &id).await?;
            let groups = stack.engine.store.list_groups(&id).await?;
            emit(out, mode, &groups, |o| {
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.id.to_string(),
                            g.source.clone(),
                            g.name.clone(),
                            g.member_count.map_or("-".into(), |n| n.to_string()),
                            if g.deleted { "deleted" } else { "" }.into(),
                        ]
                    })
                    .collect();
                table(o, &["GROUP", "SOURCE", "NAME", "MEMBERS", ""], &rows)
            })
        }
        Command::Runs(c) => runs(stack, c, mode, out).await,
        Command::Deliveries(c) => deliveries(stack, c, mode, out).await,
        Command::Replay(c) => replay(stack, c, mode, out).await,
        Command::Hold(c) => {
            let (directory, decision) = match c {
                HoldCmd::Release { directory } => (directory, HoldDecision::Release),
                HoldCmd::Discard { directory } => (directory, HoldDecision::Discard),
            };
            let id = dir_id(&directory)?;
            let d = admin::resolve_hold(&stack.engine, &id, decision, &stack.actor).await?;
            emit(out, mode, &d, |o| {
                writeln!(
                    o,
                    "{id}: hold {}; directory is {}",
                    match decision {
                        HoldDecision::Release =>
                            "released (the next run applies it with a full sync)",
                        HoldDecision::Discard => "discarded",
                    },
                    state_name(d.state)
                )
            })
        }
        Command::Audit(AuditCmd::List { directory, limit }) => {
            let id = dir_id(&directory)?;
            let entries = stack.engine.store.list_audit(&id, limit).await?;
            emit(out, mode, &entries, |o| {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|e| {
                        vec![
                            when(Some(e.at)),
                            e.action.as_str().to_string(),
                            e.actor.clone(),
                            e.details.to_string(),
                        ]
                    })
                    .collect();
                table(o, &["WHEN", "ACTION", "WHO", "DETAILS"], &rows)
            })
        }
        Command::Evidence(EvidenceCmd::List { directory, limit }) => {
            let id = dir_id(&directory)?;
            let d = admin::directory(&stack.engine, &id).await?;
            let rows = stack.engine.store.list_evidence(&id, limit).await?;
            let now = stack.engine.clock.now();
            let listed: Vec<serde_json::Value> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    // The newest row is confirmed by every later sync that found the
                    // same figures; older rows were superseded.
                    let stale = if i == 0 {
                        admin::evidence_is_stale(&d, Some(r), now)
                    } else {
                        true
                    };
                    let mut v = serde_json::to_value(r).expect("evidence serializes");
                    v["stale"] = json!(stale);
                    v
                })
                .collect();
            emit(out, mode, &listed, |o| {
                let table_rows: Vec<Vec<String>> = rows
                    .iter()
                    .zip(&listed)
                    .map(|(r, v)| {
                        vec![
                            when(Some(r.captured_at)),
                            r.active_headcount.to_string(),
                            r.terminations_last_30_days.to_string(),
                            r.new_hires_last_30_days.to_string(),
                            r.target_share
                                .iter()
                                .map(|(t, s)| format!("{t}={:.0}%", s * 100.0))
                                .collect::<Vec<_>>()
                                .join(" "),
                            if v["stale"] == json!(true) {
                                "stale"
                            } else {
                                "current"
                            }
                            .into(),
                            r.fingerprint.chars().take(12).collect(),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &[
                        "CAPTURED",
                        "ACTIVE",
                        "TERMINATED(30D)",
                        "HIRED(30D)",
                        "SYNCED TO",
                        "",
                        "FINGERPRINT",
                    ],
                    &table_rows,
                )
            })
        }
    }
}

fn state_name(s: DirectoryState) -> &'static str {
    match s {
        DirectoryState::Active => "active",
        DirectoryState::Paused => "paused",
        DirectoryState::Held => "held",
        DirectoryState::Revoked => "revoked",
    }
}

async fn directories(
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
            let outcome = admin::connect(
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
            let d = admin::directory(engine, &dir_id(&directory)?).await?;
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
                let current = admin::directory(engine, &id).await?.safeguard;
                change.safeguard = Some(Safeguard {
                    max_share: a.safeguard_max_share.unwrap_or(current.max_share),
                    min_count: a.safeguard_min_count.unwrap_or(current.min_count),
                });
            }
            let d = admin::update_settings(engine, scheduler, &id, &change, &stack.actor).await?;
            emit(out, mode, &d, |o| {
                writeln!(o, "{id}: settings saved; the next run is a full sync")
            })
        }
        DirectoriesCmd::Pause { directory } => {
            let d = admin::pause(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
            emit(out, mode, &d, |o| writeln!(o, "{}: paused", d.id))
        }
        DirectoriesCmd::Resume { directory } => {
            let d = admin::resume(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
            emit(out, mode, &d, |o| writeln!(o, "{}: active", d.id))
        }
        DirectoriesCmd::Revoke { directory } => {
            let d = admin::revoke(engine, scheduler, &dir_id(&directory)?, &stack.actor).await?;
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

fn target_spec(
    a: &TargetArgs,
    input: &mut dyn BufRead,
    require_secret: bool,
) -> Result<TargetSpec, CliError> {
    let kind = match a.kind {
        KindArg::AppWebhook => TargetKind::AppWebhook { url: a.url.clone() },
        KindArg::Scim => TargetKind::Scim {
            base_url: a.url.clone(),
            scim: Default::default(),
        },
        KindArg::HttpUpsert => TargetKind::HttpUpsert {
            url: a.url.clone(),
            fields: a.fields.clone(),
            required: a.required.clone(),
        },
        KindArg::EventBridge => TargetKind::EventBridge {
            bus_arn: a.url.clone(),
        },
    };
    let mut filter = TargetFilter::default();
    for s in &a.states {
        let state = serde_json::from_value(json!(s)).map_err(|_| {
            usage(format!(
                "--state {s:?}: pending, active, inactive or deleted"
            ))
        })?;
        filter.states.push(state);
    }
    let secret = match a.kind {
        KindArg::EventBridge => None,
        KindArg::HttpUpsert if a.secret_param.is_none() => None,
        _ if require_secret => Some(read_secret(
            &a.secret,
            TARGET_SECRET_ENV,
            "target secret",
            input,
        )?),
        _ => read_optional_secret(&a.secret, TARGET_SECRET_ENV, input)?,
    };
    let secrets = secret.map(|s| {
        let mut t = TargetSecrets::default();
        match a.kind {
            KindArg::AppWebhook => t.signing_secrets = vec![s],
            KindArg::Scim => t.bearer_token = Some(s),
            KindArg::HttpUpsert => {
                let name = a.secret_param.clone().expect("checked above");
                t.url_params.insert(name, s);
            }
            KindArg::EventBridge => {}
        }
        t
    });
    Ok(TargetSpec {
        target: Target {
            id: target_id(&a.target)?,
            kind,
            filter,
            enabled: !a.disabled,
        },
        secrets,
    })
}

fn kind_and_address(kind: &TargetKind) -> (&'static str, String) {
    match kind {
        TargetKind::AppWebhook { url } => ("app_webhook", url.clone()),
        TargetKind::Scim { base_url, .. } => ("scim", base_url.clone()),
        TargetKind::HttpUpsert { url, .. } => ("http_upsert", url.clone()),
        TargetKind::EventBridge { bus_arn } => ("event_bridge", bus_arn.clone()),
    }
}

async fn targets(
    stack: &Stack,
    cmd: TargetsCmd,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    let engine = &stack.engine;
    match cmd {
        TargetsCmd::Add(a) => {
            let id = dir_id(&a.directory)?;
            let spec = target_spec(&a, input, true)?;
            let t = spec.target.id.clone();
            let d = admin::add_target(engine, &id, spec, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} added")
            })
        }
        TargetsCmd::Update(a) => {
            let id = dir_id(&a.directory)?;
            let spec = target_spec(&a, input, false)?;
            let t = spec.target.id.clone();
            let d = admin::update_target(engine, &id, spec, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} updated")
            })
        }
        TargetsCmd::Remove { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let d = admin::remove_target(engine, &id, &t, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} removed")
            })
        }
        TargetsCmd::List { directory } => {
            let d = admin::directory(engine, &dir_id(&directory)?).await?;
            emit(out, mode, &d.targets, |o| {
                let rows: Vec<Vec<String>> = d
                    .targets
                    .iter()
                    .map(|t| {
                        let (kind, address) = kind_and_address(&t.kind);
                        vec![
                            t.id.to_string(),
                            kind.into(),
                            address,
                            if t.enabled { "enabled" } else { "disabled" }.into(),
                        ]
                    })
                    .collect();
                table(o, &["TARGET", "KIND", "ADDRESS", "STATE"], &rows)
            })
        }
        TargetsCmd::Test { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let result = admin::test_target(engine, &id, &t).await?;
            emit(out, mode, &result, |o| {
                writeln!(
                    o,
                    "{t}: {} ({})",
                    if result.ok { "ok" } else { "FAILED" },
                    result.detail
                )
            })?;
            if result.ok {
                Ok(())
            } else {
                Err(usage(format!("target {t} test failed: {}", result.detail)))
            }
        }
    }
}

async fn sync(
    stack: &Stack,
    a: SyncArgs,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let id = dir_id(&a.directory)?;
    let request = SyncRequest {
        directory_id: id.clone(),
        mode: if a.full {
            SyncMode::Full
        } else {
            SyncMode::Incremental
        },
    };
    let progress = spinner(mode, format!("syncing {id} ({})", request.mode.as_str()));
    let run = sync_engine::run::run_sync(&stack.engine, &request, &RunOptions::default()).await;
    progress.finish_and_clear();
    let run = run?;
    emit(out, mode, &run, |o| {
        let c = &run.counts;
        writeln!(
            o,
            "run {} {:?} ({}): {} seen, {} created, {} updated, {} deactivated, {} deleted, {} unchanged, {} skipped",
            run.id, run.status, run.mode.as_str(), c.seen, c.created, c.updated, c.deactivated, c.deleted, c.unchanged, c.skipped
        )?;
        for e in &run.errors {
            writeln!(o, "  error: {e}")?;
        }
        Ok(())
    })?;
    if run.status == domain::RunStatus::Failed {
        return Err(usage(format!(
            "sync of {id} failed: {}",
            run.errors.join("; ")
        )));
    }
    Ok(())
}

/// Dead letters waiting in the stack's retry queue: deployed, the delivery and change
/// dead-letter queues summed; locally, those in the data directory's queue. `None`
/// for a stack without a retry queue.
async fn dead_letter_depth(stack: &Stack) -> Result<Option<u64>, CliError> {
    let Some(queue) = &stack.engine.retry_queue else {
        return Ok(None);
    };
    match queue.dead_letter_depth().await {
        Ok(depth) => Ok(Some(depth)),
        Err(ports::BusError::Unavailable { reason }) => {
            Err(CliError::Usage(format!("dead-letter queue: {reason}")))
        }
    }
}

async fn status(
    stack: &Stack,
    a: StatusArgs,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let ids = match a.directory {
        Some(d) => vec![dir_id(&d)?],
        None => stack
            .engine
            .store
            .list_directories()
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect(),
    };
    // Deployed: the SQS dead-letter queues; local: the data directory's retry queue.
    let depth = dead_letter_depth(stack).await?;
    let mut all = Vec::new();
    for id in &ids {
        all.push(admin::status(&stack.engine, id, depth).await?);
    }
    emit(out, mode, &all, |o| {
        for s in &all {
            writeln!(o, "{}  {}", s.directory_id, state_name(s.state))?;
            writeln!(o, "  last success   {}", when(s.last_success))?;
            writeln!(o, "  stale          {}", if s.stale { "yes" } else { "no" })?;
            if let Some(h) = &s.hold {
                writeln!(
                    o,
                    "  held           run {}: would deactivate {}, delete {} of {}",
                    h.run_id, h.would_deactivate, h.would_delete, h.active_before
                )?;
            }
            if let Some(r) = &s.last_run {
                writeln!(
                    o,
                    "  last run       {} {:?} {} ({} seen, {} changed)",
                    r.id,
                    r.status,
                    r.mode.as_str(),
                    r.counts.seen,
                    r.counts.created + r.counts.updated + r.counts.deactivated + r.counts.deleted
                )?;
            }
            let users: Vec<String> = s.users.iter().map(|(k, v)| format!("{v} {k}")).collect();
            writeln!(o, "  users          {}", users.join(", "))?;
            for t in &s.targets {
                let counts: Vec<String> = t
                    .by_status
                    .iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect();
                writeln!(
                    o,
                    "  target {:<8} {}{}{}",
                    t.target_id,
                    if t.failing { "FAILING " } else { "ok " },
                    counts.join(", "),
                    if t.breaker_open {
                        " (breaker open)"
                    } else {
                        ""
                    }
                )?;
            }
            writeln!(
                o,
                "  dead letters   {}",
                s.dead_letter_depth
                    .map_or("not readable from here".to_string(), |n| n.to_string())
            )?;
            writeln!(
                o,
                "  evidence       {}",
                if s.evidence_stale { "stale" } else { "current" }
            )?;
        }
        Ok(())
    })
}

async fn users(
    stack: &Stack,
    cmd: UsersCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        UsersCmd::List { directory, state } => {
            let id = dir_id(&directory)?;
            admin::directory(&stack.engine, &id).await?;
            let mut all = stack.engine.store.list_users(&id).await?;
            if let Some(s) = &state {
                all.retain(|u| u.state.as_str() == s);
            }
            // The list names users; their HR fields are shown only by `users show`.
            let listed: Vec<serde_json::Value> = all
                .iter()
                .map(|u| {
                    json!({
                        "id": u.id, "employeeId": u.employee_id, "displayName": u.display_name,
                        "state": u.state, "version": u.version,
                    })
                })
                .collect();
            emit(out, mode, &listed, |o| {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|u| {
                        vec![
                            u.employee_id.to_string(),
                            u.id.to_string(),
                            u.display_name.clone().unwrap_or_default(),
                            u.state.as_str().into(),
                            u.version.to_string(),
                        ]
                    })
                    .collect();
                table(o, &["EMPLOYEE", "USER", "NAME", "STATE", "VERSION"], &rows)
            })
        }
        UsersCmd::Show {
            directory,
            employee,
        } => {
            let id = dir_id(&directory)?;
            let e = employee_id(&employee)?;
            let user = stack
                .engine
                .store
                .get_user(&id, &e)
                .await?
                .ok_or_else(|| usage(format!("no employee {e} in {id}")))?;
            emit(out, mode, &user, |o| {
                let v = serde_json::to_value(&user).expect("a user serializes");
                let text = serde_json::to_string_pretty(&v).expect("a value serializes");
                writeln!(o, "{text}")
            })
        }
    }
}

async fn runs(
    stack: &Stack,
    cmd: RunsCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        RunsCmd::List { directory, limit } => {
            let id = dir_id(&directory)?;
            let runs = stack.engine.store.list_runs(&id, limit).await?;
            emit(out, mode, &runs, |o| {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.mode.as_str().into(),
                            format!("{:?}", r.status).to_lowercase(),
                            when(Some(r.started_at)),
                            r.counts.seen.to_string(),
                            (r.counts.created + r.counts.updated).to_string(),
                            r.counts.skipped.to_string(),
                        ]
                    })
                    .collect();
                table(
                    o,
                    &[
                        "RUN", "MODE", "STATUS", "STARTED", "SEEN", "CHANGED", "SKIPPED",
                    ],
                    &rows,
                )
            })
        }
        RunsCmd::Show { directory, run } => {
            let id = dir_id(&directory)?;
            let run_id = RunId::parse(run.clone()).map_err(|e| usage(format!("run id: {e}")))?;
            let r = stack
                .engine
                .store
                .get_run(&id, &run_id)
                .await?
                .ok_or_else(|| usage(format!("no run {run} in {id}")))?;
            emit(out, mode, &r, |o| {
                let text = serde_json::to_string_pretty(&r).expect("a run serializes");
                writeln!(o, "{text}")
            })
        }
    }
}

async fn deliveries(
    stack: &Stack,
    cmd: DeliveriesCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let DeliveriesCmd::List {
        directory,
        target,
        user,
        status,
    } = cmd;
    let id = dir_id(&directory)?;
    let status = match status {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<DeliveryStatus>(json!(s)).map_err(|_| {
                usage(format!(
                    "--status {s:?}: delivered, skipped, retrying, failed or dead_lettered"
                ))
            })?,
        ),
    };
    // A user is named by its user id or its BambooHR employee id.
    let object_id = match user {
        None => None,
        Some(u) if u.starts_with("usr_") => Some(u),
        Some(u) => Some(domain::UserId::derive(&id, &employee_id(&u)?).to_string()),
    };
    let query = DeliveryQuery {
        target: target.as_deref().map(target_id).transpose()?,
        object_id,
        status,
    };
    let records = stack.engine.store.list_deliveries(&id, &query).await?;
    emit(out, mode, &records, |o| {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.target_id.to_string(),
                    r.object_id.clone(),
                    r.status.as_str().into(),
                    r.version.to_string(),
                    r.attempts.to_string(),
                    when(Some(r.last_attempt_at)),
                    r.last_error
                        .clone()
                        .or(r.skipped_reason.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        table(
            o,
            &[
                "TARGET", "OBJECT", "STATUS", "VERSION", "ATTEMPTS", "LAST", "REASON",
            ],
            &rows,
        )
    })
}

async fn replay(
    stack: &Stack,
    cmd: ReplayCmd,
    mode: Output,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        ReplayCmd::DeadLetters { directory, max } => {
            let under = directory.as_deref().map(dir_id).transpose()?;
            let n = admin::redrive(&stack.engine, max, under.as_ref(), &stack.actor).await?;
            emit(out, mode, &json!({"redriven": n}), |o| {
                writeln!(o, "{n} dead letters put back on the retry path")
            })
        }
        ReplayCmd::Push {
            directory,
            target,
            employee,
        } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let e = employee.as_deref().map(employee_id).transpose()?;
            let progress = spinner(mode, format!("re-pushing {id} to {t}"));
            let outcomes = admin::repush(&stack.engine, &id, &t, e.as_ref(), &stack.actor).await;
            progress.finish_and_clear();
            let outcomes = outcomes?;
            let delivered = outcomes
                .iter()
                .filter(|(_, o)| o.starts_with("Delivered"))
                .count();
            emit(out, mode, &outcomes, |o| {
                writeln!(
                    o,
                    "{} users re-pushed to {t}: {delivered} delivered, {} not (see `deliveries list`)",
                    outcomes.len(),
                    outcomes.len() - delivered
                )
            })
        }
    }
}
