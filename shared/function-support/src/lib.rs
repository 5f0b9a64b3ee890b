//! Start-up shared by the Lambda binaries: read the stack's configuration from the
//! environment once, initialise JSON tracing, and build the engine on the AWS adapters.
//! Each `main.rs` stays a few lines.

use std::sync::Arc;
use std::time::Duration;

use aws_adapters::{DynamoStore, EventBridgeBus, SecretAccessPolicy, SecretsManagerStore};
use ports::{CachingSecretStore, SecretPart, SystemClock};
use sync_engine::Engine;

pub mod emf;
pub mod scheduler;

pub use scheduler::{aws_scheduler, PollerSchedules, SchedulerSettings};
#[cfg(feature = "testing")]
pub mod testing;

/// How long directory secrets stay cached in a warm function.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

/// The stack's configuration is incomplete or wrong. Never retryable: the function's
/// environment does not change until the stack is redeployed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is missing or empty.
    #[error("environment variable {0} must be set (the SAM template sets it)")]
    Missing(&'static str),
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The namespace of every function's metrics when METRICS_NAMESPACE is unset (the
/// template sets `bamboohr-sync/<stack name>`).
pub const DEFAULT_METRICS_NAMESPACE: &str = "bamboohr-sync";

/// METRICS_NAMESPACE, else [`DEFAULT_METRICS_NAMESPACE`].
pub fn metrics_namespace_from_env() -> String {
    var("METRICS_NAMESPACE").unwrap_or_else(|_| DEFAULT_METRICS_NAMESPACE.to_string())
}

/// POLLER_FUNCTION_ARN: the poller the functions that ask for runs schedule.
pub fn poller_arn_from_env() -> Result<String, ConfigError> {
    var("POLLER_FUNCTION_ARN")
}

/// The environment variable holding how many days a revoked directory's history is
/// kept before the poller's sweep purges it.
pub const REVOKED_RETENTION_DAYS: &str = "REVOKED_RETENTION_DAYS";

/// Reads [`REVOKED_RETENTION_DAYS`]: unset means the default (90 days), a value that is
/// not a whole number of days between 1 and 3650 is an error, so a typo never purges
/// early.
pub fn revoked_retention_from_env(
) -> Result<sync_engine::operate::retention::RevokedRetention, ConfigError> {
    match std::env::var(REVOKED_RETENTION_DAYS) {
        Ok(v) if !v.trim().is_empty() => revoked_retention_from(&v),
        _ => Ok(sync_engine::operate::retention::RevokedRetention::default()),
    }
}

fn revoked_retention_from(
    value: &str,
) -> Result<sync_engine::operate::retention::RevokedRetention, ConfigError> {
    sync_engine::operate::retention::RevokedRetention::parse(value).map_err(|e| {
        ConfigError::Invalid {
            name: REVOKED_RETENTION_DAYS,
            reason: e.to_string(),
        }
    })
}

/// OUTBOUND_BLOCK_PRIVATE: `true` (the default when unset) or `false`.
fn block_private_from_env() -> Result<bool, ConfigError> {
    match std::env::var("OUTBOUND_BLOCK_PRIVATE") {
        Err(_) => Ok(true),
        Ok(v) => match v.trim() {
            "" | "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ConfigError::Invalid {
                name: "OUTBOUND_BLOCK_PRIVATE",
                reason: "must be true or false".into(),
            }),
        },
    }
}

/// What every function reads: the stack's resources, its audit table and where its
/// metrics go. Each function's own `Settings` adds what only it needs.
#[derive(Debug, Clone)]
pub struct CommonSettings {
    /// The table, bus and secret prefix.
    pub stack: StackConfig,
    /// AUDIT_TABLE_NAME.
    pub audit_table: String,
    /// EVIDENCE_TABLE_NAME (the stack's put-only `EvidenceTable`); unset, evidence
    /// rows share the audit table, put-only as well.
    pub evidence_table: Option<String>,
    /// CREDENTIAL_KEY_ARN (the stack's `CredentialKey`): stored credentials are
    /// sealed with a data key per directory under it; unset, they are stored as
    /// Secrets Manager encrypts them.
    pub credential_key: Option<String>,
    /// METRICS_NAMESPACE (default [`DEFAULT_METRICS_NAMESPACE`]).
    pub metrics_namespace: String,
    /// Whether this function creates directory secrets (the admin API) or only reads
    /// and updates them.
    pub secrets: SecretsAccess,
    /// OUTBOUND_BLOCK_PRIVATE (default true): refuse private, loopback and link-local
    /// addresses. A deployed stack calls HTTPS only either way.
    pub block_private_networks: bool,
}

impl CommonSettings {
    /// Reads every common setting; a missing one names its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            stack: StackConfig::from_env()?,
            audit_table: audit_table_from_env()?,
            evidence_table: std::env::var(EVIDENCE_TABLE_NAME)
                .ok()
                .filter(|v| !v.trim().is_empty()),
            credential_key: credential_key_from_env()?,
            metrics_namespace: metrics_namespace_from_env(),
            secrets: SecretsAccess::from_env()?,
            block_private_networks: block_private_from_env()?,
        })
    }

    /// The engine on the AWS adapters, audit entries in the audit table, directory
    /// secrets as [`CommonSettings::secrets`] says, calling out under the deployed
    /// stack's policy (HTTPS only, private networks as configured).
    pub fn engine(&self, sdk: &aws_config::SdkConfig) -> Engine {
        let mut store =
            DynamoStore::new(sdk, &self.stack.table_name).with_audit_table(&self.audit_table);
        if let Some(evidence) = &self.evidence_table {
            store = store.with_evidence_table(evidence);
        }
        engine_on(
            sdk,
            &self.stack,
            store,
            self.secrets.sealed_store(
                sdk,
                &self.stack.secret_prefix,
                self.credential_key.as_deref(),
            ),
        )
        .with_outbound(sync_engine::outbound_http::Policy::deployed(
            self.block_private_networks,
        ))
    }
}

/// The environment variable naming the stack's KMS key for directory secrets
/// (`SecretsKey`). The template sets it for the admin API only, the one function that
/// creates secrets; its presence makes a function's store a creating one.
pub const SECRETS_KMS_KEY_ARN: &str = "SECRETS_KMS_KEY_ARN";

/// Per part of a directory's secrets, the environment variable listing (comma-separated)
/// the role ARNs of the stack's functions that read it. Read with
/// [`SECRETS_KMS_KEY_ARN`]: they become each part's resource policy.
pub const SECRET_READERS: [(SecretPart, &str); 3] = [
    (SecretPart::Bamboohr, "SECRET_READERS_BAMBOOHR"),
    (SecretPart::Webhook, "SECRET_READERS_WEBHOOK"),
    (SecretPart::Targets, "SECRET_READERS_TARGETS"),
];

/// How a function may use directory secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsAccess {
    /// The control plane: creates each part encrypted with the stack's key and puts a
    /// resource policy on it.
    Creates {
        /// [`SECRETS_KMS_KEY_ARN`].
        kms_key_arn: String,
        /// Who may read each part ([`SECRET_READERS`]).
        policy: SecretAccessPolicy,
    },
    /// Every other function: reads its parts, updates existing ones (the poller's
    /// refreshed OAuth tokens), never creates or deletes.
    UpdatesOnly,
}

impl SecretsAccess {
    /// Reads [`SECRETS_KMS_KEY_ARN`] and, when it is set, [`SECRET_READERS`] (each
    /// required then).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`SecretsAccess::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let Some(kms_key_arn) = get(SECRETS_KMS_KEY_ARN) else {
            return Ok(Self::UpdatesOnly);
        };
        let kms_key_arn = kms_key_arn.trim().to_string();
        if !(kms_key_arn.starts_with("arn:") && kms_key_arn.contains(":key/")) {
            return Err(ConfigError::Invalid {
                name: SECRETS_KMS_KEY_ARN,
                reason: "not a KMS key ARN".into(),
            });
        }
        let mut policy = SecretAccessPolicy::new();
        for (part, var) in SECRET_READERS {
            let roles = get(var).ok_or(ConfigError::Missing(var))?;
            for role in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                if !(role.starts_with("arn:") && role.contains(":role/")) {
                    return Err(ConfigError::Invalid {
                        name: var,
                        reason: format!("{role} is not an IAM role ARN"),
                    });
                }
                policy = policy.allow(part, role);
            }
            if policy.readers(part).is_empty() {
                // A policy with no reader would deny the part to every function.
                return Err(ConfigError::Invalid {
                    name: var,
                    reason: "names no role".into(),
                });
            }
        }
        Ok(Self::Creates {
            kms_key_arn,
            policy,
        })
    }

    /// The Secrets Manager store this access allows, cached.
    pub fn store(
        &self,
        sdk: &aws_config::SdkConfig,
        prefix: &str,
    ) -> CachingSecretStore<SecretsManagerStore> {
        self.sealed_store(sdk, prefix, None)
    }

    /// [`SecretsAccess::store`], sealing credentials with a data key per directory
    /// under the KMS key `credential_key` when given ([`CREDENTIAL_KEY_ARN`]).
    pub fn sealed_store(
        &self,
        sdk: &aws_config::SdkConfig,
        prefix: &str,
        credential_key: Option<&str>,
    ) -> CachingSecretStore<SecretsManagerStore> {
        let mut store = SecretsManagerStore::new(sdk, prefix);
        if let Some(key) = credential_key {
            store = store.with_sealer(std::sync::Arc::new(aws_adapters::KmsEnvelopeSealer::new(
                sdk, key,
            )));
        }
        let store = match self {
            Self::Creates {
                kms_key_arn,
                policy,
            } => store
                .with_kms_key(kms_key_arn)
                .with_access_policy(policy.clone()),
            Self::UpdatesOnly => store.updating_only(),
        };
        CachingSecretStore::new(store, SECRET_CACHE_TTL)
    }
}

/// What a function that asks the poller for runs reads (the webhook for targeted
/// runs, the admin API for requested runs, pauses and resumes): the common settings
/// and the poller's schedules.
#[derive(Debug, Clone)]
pub struct SchedulingSettings {
    /// The stack's resources, audit table and metrics namespace.
    pub common: CommonSettings,
    /// The schedules and the poller they invoke.
    pub schedules: PollerSchedules,
}

impl SchedulingSettings {
    /// Reads every setting; a missing or invalid one names its variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonSettings::from_env()?,
            schedules: PollerSchedules::from_env()?,
        })
    }
}

/// The stack's resources, as the SAM template passes them.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The DynamoDB table.
    pub table_name: String,
    /// The EventBridge bus change events go to, for the customers' own consumers.
    pub event_bus_name: String,
    /// The Secrets Manager name prefix of directory secrets.
    pub secret_prefix: String,
    /// The FIFO change queue the dispatcher is fed from (CHANGE_QUEUE_URL). The
    /// functions always have it; a tool without it publishes to the bus only.
    pub change_queue_url: Option<String>,
    /// Message groups per directory on the change queue (DELIVERY_LANES): the most of
    /// one directory's batches in flight at once.
    pub delivery_lanes: u16,
}

fn var(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

impl StackConfig {
    /// Reads TABLE_NAME, EVENT_BUS_NAME, SECRET_PREFIX, CHANGE_QUEUE_URL (required: a
    /// function that publishes without it would reach no target) and DELIVERY_LANES
    /// (optional, 1-1024, default [`aws_adapters::DEFAULT_LANES`]).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: var("TABLE_NAME")?,
            event_bus_name: var("EVENT_BUS_NAME")?,
            secret_prefix: var("SECRET_PREFIX")?,
            change_queue_url: Some(var("CHANGE_QUEUE_URL")?),
            delivery_lanes: lanes_from(std::env::var(DELIVERY_LANES).ok().as_deref())?,
        })
    }

    /// A configuration with the default lanes and no change queue (tools and tests
    /// that publish to the bus only).
    pub fn bus_only(
        table_name: impl Into<String>,
        event_bus_name: impl Into<String>,
        secret_prefix: impl Into<String>,
    ) -> Self {
        Self {
            table_name: table_name.into(),
            event_bus_name: event_bus_name.into(),
            secret_prefix: secret_prefix.into(),
            change_queue_url: None,
            delivery_lanes: aws_adapters::DEFAULT_LANES,
        }
    }

    /// This configuration publishing to `change_queue_url` too.
    pub fn with_change_queue(mut self, change_queue_url: impl Into<String>) -> Self {
        self.change_queue_url = Some(change_queue_url.into());
        self
    }
}

/// The environment variable with the change queue's lanes per directory.
pub const DELIVERY_LANES: &str = "DELIVERY_LANES";

/// Parses [`DELIVERY_LANES`]: absent or empty is the default; otherwise 1-1024.
fn lanes_from(value: Option<&str>) -> Result<u16, ConfigError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(aws_adapters::DEFAULT_LANES),
        Some(v) => v
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=aws_adapters::MAX_LANES).contains(n))
            .ok_or_else(|| ConfigError::Invalid {
                name: DELIVERY_LANES,
                reason: format!(
                    "{v:?} is not a whole number from 1 to {}",
                    aws_adapters::MAX_LANES
                ),
            }),
    }
}

/// Targets whose TRACE events carry whole request and response bodies: the AWS SDK's
/// orchestrator logs every DynamoDB item it reads or writes, and items hold HR data.
pub const BODY_LOGGING_TARGETS: [&str; 1] = ["aws_smithy_runtime"];

/// Whether an event may be logged whatever RUST_LOG says: false for the TRACE events of
/// [`BODY_LOGGING_TARGETS`], so an operator turning on `RUST_LOG=trace` to debug never
/// sends HR data to CloudWatch (tests/no_secrets_in_logs proves the rest is clean).
pub fn carries_no_bodies(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() != tracing::Level::TRACE
        || !BODY_LOGGING_TARGETS
            .iter()
            .any(|t| meta.target().starts_with(t))
}

/// JSON logs for CloudWatch, filtered by RUST_LOG (default `info`) and by
/// [`carries_no_bodies`].
pub fn init_tracing() {
    use tracing_subscriber::filter::{filter_fn, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_filter(env.and(filter_fn(carries_no_bodies)));
    tracing_subscriber::registry().with(layer).init();
}

/// The engine on AWS: DynamoDB store, cached Secrets Manager (creating secrets under
/// the account's default key, as tests and tools need), EventBridge bus. The functions
/// use [`CommonSettings::engine`].
pub fn aws_engine(sdk: &aws_config::SdkConfig, config: &StackConfig) -> Engine {
    engine_on(
        sdk,
        config,
        DynamoStore::new(sdk, &config.table_name),
        tool_secrets(sdk, config),
    )
}

fn tool_secrets(
    sdk: &aws_config::SdkConfig,
    config: &StackConfig,
) -> CachingSecretStore<SecretsManagerStore> {
    CachingSecretStore::new(
        SecretsManagerStore::new(sdk, &config.secret_prefix),
        SECRET_CACHE_TTL,
    )
}

/// The environment variable naming the audit table (the stack's `AuditTable`).
pub const AUDIT_TABLE_NAME: &str = "AUDIT_TABLE_NAME";

/// The environment variable naming the KMS key under which each directory's
/// credentials are sealed with their own data key (the stack's `CredentialKey`).
pub const CREDENTIAL_KEY_ARN: &str = "CREDENTIAL_KEY_ARN";

/// Reads [`CREDENTIAL_KEY_ARN`]: unset is none; set, it must be a KMS key ARN.
pub fn credential_key_from_env() -> Result<Option<String>, ConfigError> {
    credential_key_from(std::env::var(CREDENTIAL_KEY_ARN).ok())
}

fn credential_key_from(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    if !(v.starts_with("arn:") && v.contains(":key/")) {
        return Err(ConfigError::Invalid {
            name: CREDENTIAL_KEY_ARN,
            reason: "not a KMS key ARN".into(),
        });
    }
    Ok(Some(v))
}

/// The environment variable naming the evidence table (the stack's `EvidenceTable`).
pub const EVIDENCE_TABLE_NAME: &str = "EVIDENCE_TABLE_NAME";

/// Reads [`AUDIT_TABLE_NAME`]; required, so a function never falls back to writing
/// audit entries into the main table, where roles may update and delete.
pub fn audit_table_from_env() -> Result<String, ConfigError> {
    var(AUDIT_TABLE_NAME)
}

/// [`aws_engine`] with audit entries in `audit_table`, where the stack's roles may
/// only put (conditionally, so never over an entry) and query. What the functions use;
/// [`aws_engine`] alone keeps entries in the main table (tests and tools).
pub fn aws_engine_with_audit_table(
    sdk: &aws_config::SdkConfig,
    config: &StackConfig,
    audit_table: &str,
) -> Engine {
    engine_on(
        sdk,
        config,
        DynamoStore::new(sdk, &config.table_name).with_audit_table(audit_table),
        tool_secrets(sdk, config),
    )
}

/// [`aws_engine_with_audit_table`] with directory secrets as `secrets` says (what
/// [`CommonSettings::engine`] builds, without its outbound policy: tests and tools
/// that call local peers over plain HTTP).
pub fn aws_engine_with_secrets(
    sdk: &aws_config::SdkConfig,
    config: &StackConfig,
    audit_table: &str,
    secrets: &SecretsAccess,
) -> Engine {
    engine_on(
        sdk,
        config,
        DynamoStore::new(sdk, &config.table_name).with_audit_table(audit_table),
        secrets.store(sdk, &config.secret_prefix),
    )
}

fn engine_on(
    sdk: &aws_config::SdkConfig,
    config: &StackConfig,
    store: DynamoStore,
    secrets: CachingSecretStore<SecretsManagerStore>,
) -> Engine {
    let bus = EventBridgeBus::new(sdk, &config.event_bus_name);
    let bus: Arc<dyn ports::EventBus> = match &config.change_queue_url {
        // The change queue first: it is what reaches the targets (see TeeBus).
        Some(url) => Arc::new(ports::TeeBus::new(
            aws_adapters::SqsChangeNotices::new(sdk, url, config.delivery_lanes),
            bus,
        )),
        None => Arc::new(bus),
    };
    Engine::new(
        Arc::new(store),
        Arc::new(secrets),
        bus,
        Arc::new(SystemClock),
    )
}

/// The dispatcher's extra capabilities on AWS: the retry queue (RETRY_QUEUE_URL) and
/// its dead-letter queue (DELIVERY_DLQ_URL), and the customer-bus publisher for
/// EventBridge targets. Where CHANGE_DLQ_URL names the change queue's dead-letter
/// queue (the admin function's status), the retry queue's dead-letter depth counts it
/// too.
pub fn with_delivery(engine: Engine, sdk: &aws_config::SdkConfig) -> Result<Engine, ConfigError> {
    let mut retry =
        aws_adapters::SqsRetryQueue::new(sdk, var("RETRY_QUEUE_URL")?, var("DELIVERY_DLQ_URL")?);
    if let Ok(url) = var("CHANGE_DLQ_URL") {
        retry = retry.with_change_dead_letter_queue(url);
    }
    Ok(engine
        .with_retry_queue(Arc::new(retry))
        .with_foreign_bus(Arc::new(aws_adapters::CustomerEventBus::new(sdk))))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_credential_key_is_optional_and_must_be_a_kms_key_arn_when_set() {
        assert_eq!(super::credential_key_from(None).unwrap(), None);
        assert_eq!(super::credential_key_from(Some("  ".into())).unwrap(), None);
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(
            super::credential_key_from(Some(arn.into())).unwrap(),
            Some(arn.to_string())
        );
        let err = super::credential_key_from(Some("alias/x".into())).unwrap_err();
        assert!(err.to_string().contains(super::CREDENTIAL_KEY_ARN), "{err}");
    }

    use super::*;

    #[test]
    fn a_retention_that_is_not_whole_days_in_range_is_a_config_error_naming_the_variable() {
        assert_eq!(revoked_retention_from("30").unwrap().in_days(), 30);
        let err = revoked_retention_from("0").unwrap_err().to_string();
        assert!(err.contains(REVOKED_RETENTION_DAYS), "{err}");
        assert!(revoked_retention_from("ninety").is_err());
    }

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/abcd";
    const ADMIN: &str = "arn:aws:iam::123456789012:role/s-AdminFunctionRole-1";
    const WEBHOOK: &str = "arn:aws:iam::123456789012:role/s-WebhookFunctionRole-2";

    #[test]
    fn a_function_without_the_secrets_key_only_updates_secrets() {
        assert_eq!(
            SecretsAccess::from_lookup(lookup(&[])).unwrap(),
            SecretsAccess::UpdatesOnly
        );
    }

    #[test]
    fn the_control_plane_creates_secrets_with_the_stacks_key_and_each_parts_readers() {
        let both = format!("{WEBHOOK}, {ADMIN}");
        let access = SecretsAccess::from_lookup(lookup(&[
            (SECRETS_KMS_KEY_ARN, KEY),
            ("SECRET_READERS_BAMBOOHR", ADMIN),
            ("SECRET_READERS_WEBHOOK", &both),
            ("SECRET_READERS_TARGETS", ADMIN),
        ]))
        .unwrap();
        let SecretsAccess::Creates {
            kms_key_arn,
            policy,
        } = access
        else {
            panic!("expected a creating store");
        };
        assert_eq!(kms_key_arn, KEY);
        assert_eq!(policy.readers(SecretPart::Webhook), [WEBHOOK, ADMIN]);
        assert_eq!(policy.readers(SecretPart::Bamboohr), [ADMIN]);
    }

    #[test]
    fn missing_or_malformed_readers_are_config_errors_naming_their_variable() {
        let err = SecretsAccess::from_lookup(lookup(&[(SECRETS_KMS_KEY_ARN, KEY)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("SECRET_READERS_BAMBOOHR"), "{err}");
        let err = SecretsAccess::from_lookup(lookup(&[
            (SECRETS_KMS_KEY_ARN, KEY),
            ("SECRET_READERS_BAMBOOHR", "*"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("SECRET_READERS_BAMBOOHR"), "{err}");
        let err = SecretsAccess::from_lookup(lookup(&[(SECRETS_KMS_KEY_ARN, "alias/x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(SECRETS_KMS_KEY_ARN), "{err}");
    }
}
