//! `targets ...`: add, list, update, remove and test a directory's delivery targets.

use std::io::{BufRead, Write};

use clap::{Args, Subcommand, ValueEnum};
use domain::{Target, TargetFilter, TargetKind};
use ports::TargetSecrets;
use serde_json::json;
use sync_engine::operate::{self, TargetSpec};

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

/// Runs a `targets` command.
pub(super) async fn run(
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
            let d = operate::add_target(engine, &id, spec, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} added")
            })
        }
        TargetsCmd::Update(a) => {
            let id = dir_id(&a.directory)?;
            let spec = target_spec(&a, input, false)?;
            let t = spec.target.id.clone();
            let d = operate::update_target(engine, &id, spec, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} updated")
            })
        }
        TargetsCmd::Remove { directory, target } => {
            let id = dir_id(&directory)?;
            let t = target_id(&target)?;
            let d = operate::remove_target(engine, &id, &t, &stack.actor).await?;
            emit(out, mode, &d.targets, |o| {
                writeln!(o, "{id}: target {t} removed")
            })
        }
        TargetsCmd::List { directory } => {
            let d = operate::directory(engine, &dir_id(&directory)?).await?;
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
            let result = operate::test_target(engine, &id, &t).await?;
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
