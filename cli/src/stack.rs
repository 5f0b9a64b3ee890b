//! Which stack a command operates: a deployed one (its resources named by the
//! CloudFormation stack's outputs, the stack given by `--stack` or
//! `BAMBOOHR_SYNC_STACK`), or the local one (the `dev` data directory: the embedded
//! file store and local secrets file).
//!
//! Locally, schedules live in the running `dev` process, which rebuilds them from the
//! directory records at every tick; a command's own scheduler is therefore a scratch
//! one, and the directory record (state, schedule settings) is what takes effect.

use std::path::Path;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;

use domain::ChangeEvent;
use embedded_adapters::{
    FileSecrets, InProcessRetryQueue, InProcessScheduler, QueueDb, SqliteStore,
};
use ports::{BusError, EventBus, PublishOutcome, Scheduler, SecretStore, Store, SystemClock};
use sync_engine::Engine;

use crate::error::CliError;

/// The engine (with the stack's retry queue, whose dead letters `status` counts) and
/// scheduler a command runs against, and who the caller is.
pub struct Stack {
    /// Base of the webhook URLs BambooHR posts to (deployed stacks).
    pub webhook_base_url: Option<String>,
    /// The engine over the stack's store, secrets and bus.
    pub engine: Engine,
    /// Where directory schedules go.
    pub scheduler: Arc<dyn Scheduler>,
    /// The caller's identity, for the audit log.
    pub actor: String,
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

impl Stack {
    /// The local stack under `data_dir`.
    pub async fn local(data_dir: &Path) -> Result<Self, CliError> {
        // No check for a running `dev`: the store and the queues are SQLite databases,
        // which coordinate writers from several processes.
        let store: Arc<dyn Store> = Arc::new(open_local_store(data_dir)?);
        let secrets: Arc<dyn SecretStore> =
            Arc::new(FileSecrets::open(data_dir.join("secrets.json")));
        // The same retry queue `dev` runs: dead letters are counted and re-driven here,
        // re-driven ones are attempted by the next `dev` run.
        let db = local_queue_db(data_dir).map_err(|e| CliError::Usage(e.to_string()))?;
        let retry = Arc::new(
            retry_queue_in(db.clone(), data_dir).map_err(|e| CliError::Usage(e.to_string()))?,
        );
        let engine = Engine::new(store, secrets, Arc::new(DeferredBus), Arc::new(SystemClock))
            .with_retry_queue(retry);
        Ok(Self {
            engine,
            scheduler: Arc::new(InProcessScheduler::from_db(db)),
            actor: local_actor(),
            webhook_base_url: None,
        })
    }

    /// The deployed stack `name`: its outputs name the table, bus, secret prefix,
    /// scheduler settings and queues; the caller is whoever the AWS credentials say
    /// (STS GetCallerIdentity). The SDK configuration comes from the environment as
    /// for the AWS CLI, with this project's timeouts and bounded, jittered retries.
    pub async fn deployed(name: &str) -> Result<Self, CliError> {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(aws_adapters::clients::timeout_config())
            .retry_config(aws_adapters::clients::retry_config())
            .load()
            .await;
        let outputs = stack_outputs(&sdk, name).await?;
        let get = |key: &str| {
            outputs.get(key).cloned().ok_or_else(|| {
                CliError::Usage(format!(
                    "stack {name} has no output {key}; deploy the current template"
                ))
            })
        };
        let config = function_support::StackConfig {
            table_name: get("TableName")?,
            event_bus_name: get("EventBusName")?,
            secret_prefix: get("SecretPrefix")?,
        };
        let mut retry = aws_adapters::SqsRetryQueue::new(
            &sdk,
            get("RetryQueueUrl")?,
            get("DeliveryDeadLetterQueueUrl")?,
        );
        // Its dead-letter depth counts the changes the dispatcher gave up on too; a stack
        // deployed before the change queue's URL was an output reports its delivery dead
        // letters only.
        if let Some(url) = outputs.get("ChangeDeadLetterQueueUrl") {
            retry = retry.with_change_dead_letter_queue(url);
        }
        let engine =
            function_support::aws_engine_with_audit_table(&sdk, &config, &get("AuditTableName")?)
                .with_retry_queue(Arc::new(retry))
                .with_foreign_bus(Arc::new(aws_adapters::CustomerEventBus::new(&sdk)));
        let settings = function_support::SchedulerSettings {
            group_name: get("SchedulerGroupName")?,
            role_arn: get("SchedulerRoleArn")?,
            dead_letter_arn: get("PollerScheduleDeadLetterQueueArn")?,
        };
        let scheduler =
            function_support::aws_scheduler(&sdk, &settings, &get("PollerFunctionArn")?)
                .map_err(|e| CliError::Usage(format!("stack {name}: {e}")))?;
        let identity = aws_sdk_sts::Client::new(&sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| CliError::Usage(format!("AWS credentials: {}", aws_error(&e))))?;
        Ok(Self {
            engine,
            scheduler: Arc::new(scheduler),
            actor: identity.arn().unwrap_or("unknown").to_string(),
            webhook_base_url: outputs.get("WebhookBaseUrl").cloned(),
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
