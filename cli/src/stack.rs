//! Which stack a command operates, and the admin API client that reaches it: a
//! deployed one (its admin API named by the CloudFormation stack's `AdminApiUrl`
//! output, the stack given by `--stack` or `BAMBOOHR_SYNC_STACK`, or the URL by
//! `--admin-url`), or the local one (the `dev` data directory: the admin API of a
//! running `dev`, or the same handler in this process over the data directory).
//!
//! Locally, schedules live in the running `dev` process, which rebuilds them from the
//! directory records at every tick; the in-process handler's scheduler is therefore
//! the data directory's, and the directory record is what takes effect.

use std::path::Path;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use admin::AdminApi;
use domain::ChangeEvent;
use embedded_adapters::{
    FileSecrets, InProcessRetryQueue, InProcessScheduler, QueueDb, SqliteStore,
};
use ports::{BusError, EventBus, PublishOutcome, SecretStore, Store, SystemClock};
use sync_engine::Engine;

use crate::error::CliError;
use admin::client::{AdminClient, Transport};

/// The stack a command operates: its admin API and, for the local stack, the engine a
/// `sync` runs on in this process.
pub struct Stack {
    /// The admin API client.
    pub client: AdminClient,
    /// The local stack's engine (`sync` runs here locally; a deployed stack's poller
    /// runs it there).
    pub local_engine: Option<Engine>,
}

/// The local bus of a one-shot command: the dispatcher runs in `dev`, not here, so
/// every event is refused and stays in the outbox, which the next `dev` run publishes
/// (outbox guarantee: nothing is lost, nothing is delivered twice).
struct DeferredBus;

// Written out as `async_trait` expands it, so the CLI needs no macro dependency.
impl EventBus for DeferredBus {
    fn publish<'a, 'b, 'c>(
        &'a self,
        events: &'b [ChangeEvent],
    ) -> Pin<Box<dyn Future<Output = Result<PublishOutcome, BusError>> + Send + 'c>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        let failed = events
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    "kept for the dev stack's dispatcher".to_string(),
                )
            })
            .collect();
        Box::pin(async move {
            Ok(PublishOutcome {
                published: Vec::new(),
                failed,
                rejected: Vec::new(),
            })
        })
    }
}

/// The local store's database in a data directory (SQLite: `dev` and CLI commands in
/// other terminals may use it at once).
pub const STORE_FILE: &str = "store.db";

/// Where versions before the SQLite store kept the local state, all in one JSON file.
pub const OLD_STORE_FILE: &str = "store.json";

/// Opens the local store under `data_dir`. A data directory of an earlier version
/// (`store.json` and no `store.db`) is refused with what to do, rather than silently
/// starting empty beside it.
pub fn open_local_store(data_dir: &Path) -> Result<SqliteStore, CliError> {
    if data_dir.join(OLD_STORE_FILE).exists() && !data_dir.join(STORE_FILE).exists() {
        return Err(CliError::Usage(format!(
            "{} holds a store from an earlier version ({OLD_STORE_FILE}), which this version \
             does not read; move the directory aside (e.g. `mv {0} {0}.old`) and run \
             `bamboohr-sync dev --demo` again, or connect your directories again",
            data_dir.display()
        )));
    }
    Ok(SqliteStore::open(data_dir.join(STORE_FILE))?)
}

/// Where versions before the queue database kept the local retry queue (JSON); its
/// waiting retries and dead letters are imported into the database once.
pub const OLD_RETRY_QUEUE_FILE: &str = "retry-queue.json";

/// The data directory's queue database (`queues.db`: the change queue, the retry
/// queue and the schedules), shared by `dev` and CLI commands in other terminals.
pub fn local_queue_db(data_dir: &Path) -> Result<Arc<QueueDb>, BusError> {
    QueueDb::open_in_data_dir(data_dir).map_err(|e| BusError::Unavailable {
        reason: e.to_string(),
    })
}

/// The local stack's retry queue in `data_dir`'s queue database.
pub fn local_retry_queue(data_dir: &Path) -> Result<InProcessRetryQueue, BusError> {
    retry_queue_in(local_queue_db(data_dir)?, data_dir)
}

/// The retry queue in the queue database `db` of `data_dir`; an earlier version's
/// JSON retry queue is imported into it once.
pub fn retry_queue_in(db: Arc<QueueDb>, data_dir: &Path) -> Result<InProcessRetryQueue, BusError> {
    let queue = InProcessRetryQueue::from_db(db, Arc::new(SystemClock));
    let old = data_dir.join(OLD_RETRY_QUEUE_FILE);
    if old.exists() {
        queue.import_json(&old)?;
    }
    Ok(queue)
}

/// The local stack's secrets: `secrets.json` in `data_dir`, each directory's parts
/// sealed with a data key of its own under the master key `credentials.key` beside it
/// (created on first use, 0600): the local equivalent of the stack's KMS envelope
/// encryption.
pub fn local_secrets(data_dir: &Path) -> Result<FileSecrets, ports::SecretsError> {
    let sealer =
        embedded_adapters::LocalSealer::open_or_create(&data_dir.join(CREDENTIALS_KEY_FILE))?;
    Ok(FileSecrets::open(data_dir.join("secrets.json")).with_sealer(Arc::new(sealer)))
}

/// The local master key's file in the data directory.
pub const CREDENTIALS_KEY_FILE: &str = "credentials.key";

/// The local stack's engine and admin API over `data_dir`.
pub fn local_api(data_dir: &Path) -> Result<(Engine, AdminApi), CliError> {
    // The store and the queues are SQLite databases, which coordinate writers from
    // several processes (a running `dev` and this command).
    let store: Arc<dyn Store> = Arc::new(open_local_store(data_dir)?);
    let secrets: Arc<dyn SecretStore> =
        Arc::new(local_secrets(data_dir).map_err(|e| CliError::Usage(e.to_string()))?);
    let db = local_queue_db(data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
    let retry =
        Arc::new(retry_queue_in(db.clone(), data_dir).map_err(|e| CliError::Usage(e.to_string()))?);
    let engine = Engine::new(store, secrets, Arc::new(DeferredBus), Arc::new(SystemClock))
        .with_retry_queue(retry)
        .with_scheduler(Arc::new(InProcessScheduler::from_db(db)));
    let api = AdminApi::new(engine.clone(), None);
    Ok((engine, api))
}

impl Stack {
    /// The local stack under `data_dir`: a running `dev`'s admin API when one answers,
    /// else the same handler in this process.
    pub async fn local(data_dir: &Path) -> Result<Self, CliError> {
        let (engine, api) = local_api(data_dir)?;
        let transport = match AdminClient::dev_endpoint(data_dir).await {
            Some(t) => t,
            None => Transport::InProcess {
                api: Arc::new(api),
                actor: local_actor(),
            },
        };
        Ok(Self {
            client: AdminClient::new(transport)?,
            local_engine: Some(engine),
        })
    }

    /// A deployed stack: by name (its `AdminApiUrl` output) or by its admin API URL.
    /// Requests are signed with the operator's AWS credentials, configured from the
    /// environment as for the AWS CLI.
    pub async fn deployed(name: Option<&str>, admin_url: Option<&str>) -> Result<Self, CliError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(aws_adapters::clients::timeout_config())
            .retry_config(aws_adapters::clients::retry_config())
            .load()
            .await;
        let url = match (admin_url, name) {
            (Some(url), _) => url.to_string(),
            (None, Some(name)) => {
                let outputs = stack_outputs(&sdk, name).await?;
                outputs.get("AdminApiUrl").cloned().ok_or_else(|| {
                    CliError::Usage(format!(
                        "stack {name} has no output AdminApiUrl; deploy the current template"
                    ))
                })?
            }
            (None, None) => return Err(CliError::Usage("no stack named".into())),
        };
        // The output ends in `/admin/`; routes are written from `/admin/`.
        let base = url
            .trim_end_matches('/')
            .trim_end_matches("/admin")
            .to_string();
        if !(base.starts_with("https://") || base.starts_with("http://127.0.0.1")) {
            return Err(CliError::Usage(format!(
                "admin API URL {url}: must be https:// (plain http only on loopback)"
            )));
        }
        Ok(Self {
            client: AdminClient::new(Transport::Deployed {
                url: base,
                sdk: Box::new(sdk),
            })?,
            local_engine: None,
        })
    }
}

/// The outputs of a CloudFormation stack, by key.
async fn stack_outputs(
    sdk: &aws_config::SdkConfig,
    name: &str,
) -> Result<std::collections::BTreeMap<String, String>, CliError> {
    let out = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| CliError::Usage(format!("stack {name}: {}", aws_error(&e))))?;
    let stack = out
        .stacks()
        .first()
        .ok_or_else(|| CliError::Usage(format!("stack {name} not found")))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The service's error code and message, or the transport failure, in one line.
fn aws_error<E, R>(e: &aws_sdk_sts::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text.replace('\n', " ")
        }
    }
}

/// `local:<user>` from the environment of the operator's shell.
pub(crate) fn local_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("local:{user}")
}
