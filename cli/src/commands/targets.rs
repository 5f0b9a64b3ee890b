//! `targets ...`: add, list, update, remove and test a directory's delivery targets,
//! with every option the engine has (filters on states, a required work email or any
//! field's values, the SCIM options), and rotate an app webhook's signing secrets;
//! each through the admin API.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::{Args, Subcommand, ValueEnum};
use domain::{Target, TargetKind};
use ports::KeyInfo;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sync_engine::operate::TargetTest;

use super::args::{dir_id, target_id, usage};
use super::secret::{read_optional_secret, read_secret, SecretSource};
use crate::error::CliError;
use crate::output::Output;
use crate::output::{emit, table};
use crate::stack::Stack;

/// Environment variable holding a target's secret (signing secret, bearer token or
/// URL parameter value) for `targets add|update`.
pub const TARGET_SECRET_ENV: &str = "BAMBOOHR_SYNC_TARGET_SECRET";

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
    /// Reconcile a SCIM target: its accounts are read back and drift repaired (deleted
    /// or suspended accounts, changed attributes) by the poller's next run.
    Reconcile {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
    },
    /// An app webhook's signing secrets (ids and ages only).
    Secrets {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
    },
    /// Add a signing secret (from $BAMBOOHR_SYNC_TARGET_SECRET or stdin): both sign
    /// until the old one is retired.
    AddSecret {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
        /// Where the secret comes from.
        #[command(flatten)]
        secret: SecretSource,
    },
    /// Retire a signing secret once receivers verify with its successor.
    RetireSecret {
        /// Directory id.
        directory: String,
        /// Target id.
        target: String,
        /// The secret's id (from `targets secrets`).
        key: String,
    },
}

/// SCIM `userName` sources on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserNameArg {
    /// The part of the work email before '@'.
    EmailLocalPart,
    /// The whole work email.
    FullEmail,
    /// BambooHR's employee number.
    EmployeeNumber,
}

/// SCIM deprovisioning on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeprovisionArg {
    /// `active: false` (a rehire reactivates the account).
    Deactivate,
    /// DELETE the account.
    Delete,
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
    /// HTTP upsert: what a user leaving the gate (the filter) gets: `deactivate`
    /// (sent once with active false; the default) or `leave` (nothing is sent).
    #[arg(long, value_parser = ["deactivate", "leave"])]
    pub gate_exit: Option<String>,
    /// Only users in these states (repeat: pending, active, inactive, deleted).
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Only users with a work email.
    #[arg(long)]
    pub require_work_email: bool,
    /// Only users whose field has one of these values: `field=value[,value...]`
    /// (repeat; e.g. a gate `litmosAccess=Yes`).
    #[arg(long = "field-in")]
    pub field_in: Vec<String>,
    /// SCIM: where a new account's userName comes from.
    #[arg(long, value_enum)]
    pub user_name_source: Option<UserNameArg>,
    /// SCIM: how leavers are deprovisioned.
    #[arg(long, value_enum)]
    pub deprovision: Option<DeprovisionArg>,
    /// SCIM: send future hires with `active: true`.
    #[arg(long)]
    pub pending_active: bool,
    /// SCIM: push groups (and their members) as well as users.
    #[arg(long)]
    pub push_groups: bool,
    /// SCIM: which name `name.givenName` carries.
    #[arg(long, value_parser = ["first", "preferred"])]
    pub name_source: Option<String>,
    /// SCIM: how existing accounts are found, in order (repeat: stored-id,
    /// external-id, work-email, user-name).
    #[arg(long = "match-key", value_parser = ["stored-id", "external-id", "work-email", "user-name"])]
    pub match_order: Vec<String>,
    /// SCIM: an attribute this target owns (repeat; replaces the default seed table),
    /// e.g. `title` or `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    #[arg(long = "owned-attribute")]
    pub owned_attributes: Vec<String>,
    /// SCIM: never let a new employee record adopt an inactive employee's account.
    #[arg(long)]
    pub no_adopt_inactive_accounts: bool,
    /// SCIM: a country name mapped to its ISO code, `Name=XX` (repeat).
    #[arg(long = "country-code")]
    pub country_codes: Vec<String>,
    /// SCIM: hours between reconciliations (0: on demand only; default 24).
    #[arg(long)]
    pub reconcile_every_hours: Option<u32>,
    /// App webhook: the event format (`native`, the default, or `workos` for WorkOS
    /// Directory Sync's `dsync.*` events).
    #[arg(long, value_parser = ["native", "workos"])]
    pub format: Option<String>,
    /// App webhook and EventBridge: a user attribute the target receives (repeat;
    /// e.g. `firstName`, `emails`, `rawAttributes.Shirt Size`). Not given: every
    /// attribute.
    #[arg(long = "project")]
    pub projection: Vec<String>,
    /// Create the target disabled.
    #[arg(long)]
    pub disabled: bool,
    /// Where the secret comes from.
    #[command(flatten)]
    pub secret: SecretSource,
}

/// The target's definition as the admin API takes it, with its secret when one is
/// given (required on `add` for kinds that have one).
fn target_body(
    a: &TargetArgs,
    input: &mut dyn BufRead,
    require_secret: bool,
) -> Result<Value, CliError> {
    let mut field_in: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in &a.field_in {
        let Some((field, values)) = entry.split_once('=') else {
            return Err(usage(format!(
                "--field-in {entry:?}: write field=value[,value...]"
            )));
        };
        field_in
            .entry(field.trim().to_string())
            .or_default()
            .extend(values.split(',').map(|v| v.trim().to_string()));
    }
    let mut body = json!({
        "id": target_id(&a.target)?,
        "enabled": !a.disabled,
        "filter": {"states": a.states, "requireWorkEmail": a.require_work_email, "fieldIn": field_in},
    });
    let scim_only = a.user_name_source.is_some()
        || a.deprovision.is_some()
        || a.pending_active
        || a.push_groups
        || a.name_source.is_some()
        || !a.match_order.is_empty()
        || !a.owned_attributes.is_empty()
        || a.no_adopt_inactive_accounts
        || !a.country_codes.is_empty()
        || a.reconcile_every_hours.is_some();
    if a.gate_exit.is_some() && a.kind != KindArg::HttpUpsert {
        return Err(usage("--gate-exit is an HTTP upsert option"));
    }
    if scim_only && a.kind != KindArg::Scim {
        return Err(usage("--user-name-source, --deprovision, --pending-active and --push-groups are SCIM options"));
    }
    if a.format.is_some() && a.kind != KindArg::AppWebhook {
        return Err(usage("--format is an app-webhook option"));
    }
    if !a.projection.is_empty() {
        if !matches!(a.kind, KindArg::AppWebhook | KindArg::EventBridge) {
            return Err(usage(
                "--project is an option of app-webhook and EventBridge targets",
            ));
        }
        body["projection"] = json!(a.projection);
    }
    match a.kind {
        KindArg::AppWebhook => {
            body["kind"] = json!("app_webhook");
            body["url"] = json!(a.url);
            if let Some(f) = &a.format {
                body["format"] = json!(f);
            }
        }
        KindArg::Scim => {
            body["kind"] = json!("scim");
            body["baseUrl"] = json!(a.url);
            let user_name = match a.user_name_source.unwrap_or(UserNameArg::EmailLocalPart) {
                UserNameArg::EmailLocalPart => "email_local_part",
                UserNameArg::FullEmail => "full_email",
                UserNameArg::EmployeeNumber => "employee_number",
            };
            let deprovision = match a.deprovision.unwrap_or(DeprovisionArg::Deactivate) {
                DeprovisionArg::Deactivate => "deactivate",
                DeprovisionArg::Delete => "delete",
            };
            let mut scim = json!({"userName": user_name, "deprovision": deprovision,
                                  "pendingActive": a.pending_active, "pushGroups": a.push_groups,
                                  "adoptInactiveAccounts": !a.no_adopt_inactive_accounts});
            if let Some(n) = &a.name_source {
                scim["nameSource"] = json!(n);
            }
            if !a.match_order.is_empty() {
                scim["matchOrder"] = json!(a
                    .match_order
                    .iter()
                    .map(|k| k.replace('-', "_"))
                    .collect::<Vec<_>>());
            }
            if !a.owned_attributes.is_empty() {
                scim["ownedAttributes"] = json!(a.owned_attributes);
            }
            if !a.country_codes.is_empty() {
                let mut map = BTreeMap::new();
                for entry in &a.country_codes {
                    let Some((name, code)) = entry.rsplit_once('=') else {
                        return Err(usage(format!("--country-code {entry:?}: write Name=XX")));
                    };
                    map.insert(name.trim().to_string(), code.trim().to_string());
                }
                scim["countryCodes"] = json!(map);
            }
            if let Some(h) = a.reconcile_every_hours {
                scim["reconcileEveryHours"] = json!(h);
            }
            body["scim"] = scim;
        }
        KindArg::HttpUpsert => {
            body["kind"] = json!("http_upsert");
            body["url"] = json!(a.url);
            body["fields"] = json!(a.fields);
            body["required"] = json!(a.required);
            body["secretParam"] = json!(a.secret_param);
            if let Some(choice) = &a.gate_exit {
                body["gateExit"] = json!(choice);
            }
        }
        KindArg::EventBridge => {
            body["kind"] = json!("event_bridge");
            body["busArn"] = json!(a.url);
        }
    }
    let takes_secret = match a.kind {
        KindArg::EventBridge => false,
        KindArg::HttpUpsert => a.secret_param.is_some(),
        _ => true,
    };
    if takes_secret {
        let secret = if require_secret {
            Some(read_secret(
                &a.secret,
                TARGET_SECRET_ENV,
                "target secret",
                input,
            )?)
        } else {
            read_optional_secret(&a.secret, TARGET_SECRET_ENV, input)?
        };
        if let Some(s) = secret {
            body["secret"] = json!(s.expose_secret());
        }
    }
    Ok(body)
}

fn print_secrets(o: &mut dyn Write, keys: &[KeyInfo]) -> std::io::Result<()> {
    crate::output::key_table(o, "SECRET", keys, ["newest (signs)", "older (signs)"])
}

fn kind_and_address(kind: &TargetKind) -> (&'static str, String) {
    match kind {
        TargetKind::AppWebhook { url, .. } => ("app_webhook", url.clone()),
        TargetKind::Scim { base_url, .. } => ("scim", base_url.clone()),
        TargetKind::HttpUpsert { url, .. } => ("http_upsert", url.clone()),
        TargetKind::EventBridge { bus_arn, .. } => ("event_bridge", bus_arn.clone()),
    }
}

/// Runs a `targets` command.
pub(super) async fn run(
    stack: &Stack,
    cmd: TargetsCmd,
    mode: Output,
    out: &mut dyn Write,
    input: &mut dyn BufRead,
) -> Result<(), CliError> {
    let api = &stack.client;
    match cmd {
        TargetsCmd::Add(a) => {
            let id = dir_id(&a.directory)?;
            let body = target_body(&a, input, true)?;
            let r = api
                .post(&format!("/admin/directories/{id}/targets"), &body)
                .await?;
            emit(out, mode, &r, |o| {
                writeln!(o, "{id}: target {} added", a.target)
            })
        }
        TargetsCmd::Update(a) => {
            let id = dir_id(&a.directory)?;
            let t = target_id(&a.target)?;
            let body = target_body(&a, input, false)?;
            let r = api
                .post(&format!("/admin/directories/{id}/targets/{t}"), &body)
                .await?;
            emit(out, mode, &r, |o| writeln!(o, "{id}: target {t} updated"))
        }
        TargetsCmd::Remove { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/targets/{t}/remove"),
                    &json!({}),
                )
                .await?;
            emit(out, mode, &r, |o| writeln!(o, "{id}: target {t} removed"))
        }
        TargetsCmd::List { directory } => {
            let id = dir_id(&directory)?;
            let targets: Vec<Target> = api
                .list(&format!("/admin/directories/{id}/targets"), &[])
                .await?;
            emit(out, mode, &targets, |o| {
                let rows: Vec<Vec<String>> = targets
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
            let result: TargetTest = serde_json::from_value(
                api.post(
                    &format!("/admin/directories/{id}/targets/{t}/test"),
                    &json!({}),
                )
                .await?,
            )
            .map_err(|e| usage(format!("the admin API answered an unexpected shape: {e}")))?;
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
        TargetsCmd::Reconcile { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/targets/{t}/reconcile"),
                    &json!({}),
                )
                .await?;
            emit(out, mode, &r, |o| {
                writeln!(
                    o,
                    "{id}: reconciliation of {t} requested; the poller runs it shortly (see `audit list`)"
                )
            })
        }
        TargetsCmd::Secrets { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let keys: Vec<KeyInfo> = api
                .list(&format!("/admin/directories/{id}/targets/{t}/secrets"), &[])
                .await?;
            emit(out, mode, &keys, |o| print_secrets(o, &keys))
        }
        TargetsCmd::AddSecret {
            directory,
            target,
            secret,
        } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let s = read_secret(&secret, TARGET_SECRET_ENV, "signing secret", input)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/targets/{t}/secrets"),
                    &json!({"secret": s.expose_secret()}),
                )
                .await?;
            let keys: Vec<KeyInfo> =
                serde_json::from_value(r["secrets"].clone()).unwrap_or_default();
            emit(out, mode, &keys, |o| print_secrets(o, &keys))
        }
        TargetsCmd::RetireSecret {
            directory,
            target,
            key,
        } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let r = api
                .post(
                    &format!("/admin/directories/{id}/targets/{t}/secrets/{key}/retire"),
                    &json!({}),
                )
                .await?;
            let keys: Vec<KeyInfo> =
                serde_json::from_value(r["secrets"].clone()).unwrap_or_default();
            emit(out, mode, &keys, |o| print_secrets(o, &keys))
        }
    }
}
