//! The world a fault scenario runs in: the stack's resources on moto, an engine whose
//! every AWS call goes through the fault proxy, a BambooHR simulator, and two targets
//! (a Rust receiver recording signed app-webhook deliveries, and scim2-server). It also
//! plays the parts AWS plays around the functions: the scheduler re-running a failed
//! or continued sync, Lambda's SQS event source feeding the dispatcher (messages it
//! reports failed come back, after ten receives they are dead-lettered), and a run
//! killed mid-way (a tokio task aborted: nothing after the abort runs, as with a
//! Lambda timeout or crash).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::http::{HeaderMap, StatusCode};
use bamboohr_simulator::{SimConfig, Simulator};
use domain::{
    Directory, DirectoryId, RunStatus, ScimConfig, SyncMode, SyncRequest, SyncRun, Target,
    TargetFilter, TargetId, TargetKind,
};
use integration_tests::fault_proxy::{FaultProxy, FaultShares, Service};
use integration_tests::{sqs_event, unique, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use ports::{DirectorySecrets, TargetSecrets};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::Value;
use sync_engine::operate::run_sync;
use sync_engine::reconcile::run::RunOptions;
use sync_engine::Engine;
use test_peers::PeerProcess;

/// The BambooHR API key the simulator accepts.
pub const API_KEY: &str = "faults-key";
/// The key BambooHR signs webhooks with.
pub const WEBHOOK_KEY: &str = "faults-webhook-key";
/// The app webhook's signing secret.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The SCIM server's bearer token.
const SCIM_TOKEN: &str = "faults-scim-token";
/// Receives after which Lambda's event source leaves a change message to the change
/// dead-letter queue (the template's `maxReceiveCount`).
const MAX_RECEIVES: u32 = 10;

/// The target ids every scenario delivers to.
pub const APP: &str = "app";
/// See [`APP`].
pub const SCIM: &str = "scim";

/// How many rounds each scenario runs: `FAULTS_ROUNDS`, else 5 with `FAULTS_LONG=1`,
/// else 1 (CI's short bounded run).
pub fn rounds() -> u64 {
    if let Some(n) = std::env::var("FAULTS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::var("FAULTS_LONG").is_ok_and(|v| v == "1") {
        5
    } else {
        1
    }
}

/// Employees in a scenario's company: more in long mode.
pub fn company_size(short: usize) -> usize {
    if std::env::var("FAULTS_LONG").is_ok_and(|v| v == "1") {
        short * 2
    } else {
        short
    }
}

/// The seed of a scenario's round: `FAULTS_SEED` (to replay a failure) or random.
/// Printed, so a failing run says how to reproduce it.
pub fn seed(scenario: &str, round: u64) -> u64 {
    let base = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random::<u32>() as u64);
    let seed = base.wrapping_add(round);
    println!("{scenario}: round {round}, seed {seed} (replay with FAULTS_SEED={base})");
    seed
}

/// One delivery the receiver accepted.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `webhook-id` (the event id, stable across retries).
    pub webhook_id: String,
    /// The event type.
    pub event_type: String,
    /// The user, group or directory id.
    pub object_id: String,
    /// The object version delivered.
    pub version: u64,
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Delivery>,
    attempts: HashMap<String, u32>,
    distinct: u64,
    failed: u64,
    fail_first_attempts: bool,
}

/// A local app that records every signed delivery (`webhook-id`, type, object and
/// version), and when asked fails the first attempt of every fourth event with a 503,
/// so the dispatcher's retry queue carries part of the traffic. Every fourth, not a
/// random share, so the target's circuit breaker (five failures in a row) never opens
/// and no retry waits longer than the first retry's 5 seconds.
#[derive(Clone)]
pub struct Receiver {
    /// Base URL.
    pub url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let st = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let st = st.clone();
            async move { receive(&st, &headers, &body) }
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state }
    }

    /// Every delivery accepted so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().deliveries.clone()
    }

    /// Turns the first-attempt failures on or off.
    pub fn fail_first_attempts(&self, on: bool) {
        self.state.lock().unwrap().fail_first_attempts = on;
    }

    /// Deliveries answered 503 on purpose.
    pub fn failed(&self) -> u64 {
        self.state.lock().unwrap().failed
    }
}

fn receive(state: &Mutex<ReceiverState>, headers: &HeaderMap, body: &str) -> StatusCode {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(id), Some(_signature)) = (header("webhook-id"), header("webhook-signature")) else {
        return StatusCode::UNAUTHORIZED;
    };
    let Ok(payload) = serde_json::from_str::<Value>(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut s = state.lock().unwrap();
    let attempt = {
        let n = s.attempts.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    if attempt == 1 {
        s.distinct += 1;
        if s.fail_first_attempts && s.distinct.is_multiple_of(4) {
            s.failed += 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    s.deliveries.push(Delivery {
        webhook_id: id,
        event_type: payload["type"].as_str().unwrap_or_default().to_string(),
        object_id: payload["objectId"].as_str().unwrap_or_default().to_string(),
        version: payload["version"].as_u64().unwrap_or_default(),
    });
    StatusCode::NO_CONTENT
}

/// What happened to the change events the dispatcher was fed.
#[derive(Debug, Default)]
pub struct Fates {
    /// Event id -> (type, object id, version), every event seen on the change queue.
    pub seen: BTreeMap<String, (String, String, u64)>,
    /// Events whose message the dispatcher reported handled.
    pub handled: BTreeSet<String>,
    /// Events left to the change dead-letter queue after ten receives.
    pub dead_lettered: BTreeSet<String>,
}

/// Counters of what the harness did on the product's behalf.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Sync invocations (each one a scheduler run).
    pub sync_attempts: u64,
    /// Sync invocations that returned an error or a failed run.
    pub sync_failures: u64,
    /// Leases of dead runs expired by the harness (deleted instead of waiting).
    pub lease_expiries: u64,
    /// Runs or dispatcher invocations killed mid-way.
    pub kills: u64,
    /// Dispatcher invocations.
    pub batches: u64,
    /// Messages the dispatcher reported failed (SQS redelivers them).
    pub redeliveries: u64,
    /// Retry-queue messages handled (target retries).
    pub target_retries: u64,
}

/// Everything one scenario runs against.
pub struct World {
    /// moto's resources, reached without the proxy (the harness's own calls).
    pub stack: TestStack,
    /// The fault proxy every engine call goes through.
    pub proxy: FaultProxy,
    /// The engine of the functions, on the proxy, with the retry queue.
    pub engine: Engine,
    /// The directory under test.
    pub dir: DirectoryId,
    /// The BambooHR company.
    pub sim: Simulator,
    _sim_server: bamboohr_simulator::SimServer,
    /// The app-webhook target.
    pub receiver: Receiver,
    /// The SCIM target.
    pub scim: PeerProcess,
    /// The delivery retry queue.
    pub retry_url: String,
    /// The delivery dead-letter queue.
    pub dlq_url: String,
    /// The change events fed to the dispatcher and what became of them.
    pub fates: Fates,
    /// What the harness did.
    pub tally: Tally,
    /// Drives the harness's random choices (kill points, changes).
    pub rng: StdRng,
    /// Whether [`World::maybe_outage`] arms outages (with the AWS faults).
    outages: bool,
    /// Outages armed.
    pub outages_armed: u64,
}

async fn queue(stack: &TestStack, name: &str) -> String {
    aws_sdk_sqs::Client::new(&stack.sdk)
        .create_queue()
        .queue_name(unique(name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

impl World {
    /// A directory with `employees` simulated employees and two targets, its engine on
    /// a fault proxy seeded with `seed` (faults off until [`World::faults`]).
    pub async fn new(seed: u64, employees: usize) -> Self {
        let stack = TestStack::provision().await;
        let proxy = FaultProxy::start(seed, FaultShares::default()).await;
        let sdk = proxy.sdk().await;
        let retry_url = queue(&stack, "retry").await;
        let dlq_url = queue(&stack, "delivery-dlq").await;
        let engine = function_support::aws_engine(&sdk, &stack.config).with_retry_queue(Arc::new(
            aws_adapters::SqsRetryQueue::new(&sdk, &retry_url, &dlq_url),
        ));
        let sim = Simulator::generate(SimConfig {
            api_key: API_KEY.into(),
            seed,
            employees,
            ..SimConfig::default()
        });
        let sim_server = sim.serve().await.unwrap();
        let receiver = Receiver::start().await;
        let scim = test_peers::spawn_python_peer(
            &test_peers::workspace_root().join("tests/peers/scim_server.py"),
            &[],
            &[("SCIM_BEARER_TOKEN", SCIM_TOKEN)],
        );

        let dir = DirectoryId::parse(unique("faults")).unwrap();
        let secret = dir.to_string();
        let targets = BTreeMap::from([
            (
                APP.to_string(),
                TargetSecrets {
                    signing_secrets: vec![SecretString::from(WHSEC)],
                    ..Default::default()
                },
            ),
            (
                SCIM.to_string(),
                TargetSecrets {
                    bearer_token: Some(SecretString::from(SCIM_TOKEN)),
                    ..Default::default()
                },
            ),
        ]);
        engine
            .secrets
            .put(
                &secret,
                &DirectorySecrets {
                    bamboohr_api_key: Some(SecretString::from(API_KEY)),
                    webhook_keys: vec![SecretString::from(WEBHOOK_KEY)],
                    targets,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut directory = Directory::new(dir.clone(), "acme", &secret).unwrap();
        directory.base_url = Some(sim_server.base_url.clone());
        directory.version = 1;
        directory.targets = vec![
            Target {
                id: TargetId::parse(APP).unwrap(),
                kind: TargetKind::app_webhook(format!("{}/hooks", receiver.url)),
                filter: TargetFilter::default(),
                enabled: true,
            },
            Target {
                id: TargetId::parse(SCIM).unwrap(),
                kind: TargetKind::Scim {
                    base_url: format!("{}/v2", scim.base_url()),
                    scim: ScimConfig::default(),
                },
                filter: TargetFilter::default(),
                enabled: true,
            },
        ];
        engine.store.put_directory(&directory, None).await.unwrap();
        Self {
            stack,
            proxy,
            engine,
            dir,
            sim,
            _sim_server: sim_server,
            receiver,
            scim,
            retry_url,
            dlq_url,
            fates: Fates::default(),
            tally: Tally::default(),
            rng: StdRng::seed_from_u64(seed ^ 0x5eed),
            outages: false,
            outages_armed: 0,
        }
    }

    /// Turns AWS faults on at these shares, with outages.
    pub fn faults(&mut self, shares: FaultShares) {
        self.proxy.set_shares(shares);
        self.proxy.set_enabled(true);
        self.outages = true;
    }

    /// Turns AWS faults off.
    pub fn no_faults(&mut self) {
        self.proxy.set_enabled(false);
        self.outages = false;
    }

    /// With probability `p` (and AWS faults on), arms an outage of DynamoDB (twice as
    /// likely), EventBridge or SQS at a random upcoming call, three to five calls
    /// long: the SDK's three attempts of one call can all fail, so the error reaches
    /// the product.
    pub fn maybe_outage(&mut self, p: f64) {
        if !self.outages || !self.rng.random_bool(p) {
            return;
        }
        let (service, within) = match self.rng.random_range(0..4) {
            0 | 1 => (Service::DynamoDb, 120),
            2 => (Service::EventBridge, 3),
            _ => (Service::Sqs, 6),
        };
        let after = self.rng.random_range(0..within);
        let calls = self.rng.random_range(3..=5);
        self.proxy.outage(service, after, calls);
        self.outages_armed += 1;
    }

    fn request(&self, mode: SyncMode) -> SyncRequest {
        SyncRequest {
            directory_id: self.dir.clone(),
            mode,
        }
    }

    /// The lease of a run that died holding it expires (16 minutes on a real
    /// deployment; deleted here so the next run need not wait).
    pub async fn expire_lease(&mut self) {
        aws_sdk_dynamodb::Client::new(&self.stack.sdk)
            .delete_item()
            .table_name(&self.stack.config.table_name)
            .key("pk", AttributeValue::S(format!("DIR#{}", self.dir)))
            .key("sk", AttributeValue::S("LEASE".into()))
            .send()
            .await
            .unwrap();
        self.tally.lease_expiries += 1;
    }

    /// Runs a sync the way the scheduler does until one completes: a failed run is
    /// run again at the next tick, a continued one resumes from its checkpoint, and a
    /// run skipped because a dead run still holds the lease waits for it to expire.
    pub async fn sync_until_completed(&mut self, mode: SyncMode) -> SyncRun {
        let options = RunOptions {
            page_size: Some(10),
            ..RunOptions::default()
        };
        for attempt in 0..60 {
            if attempt < 6 {
                self.maybe_outage(0.6);
            }
            self.tally.sync_attempts += 1;
            match run_sync(&self.engine, &self.request(mode), &options).await {
                Ok(run) if run.status == RunStatus::Completed => return run,
                Ok(run) if run.status == RunStatus::Skipped => self.expire_lease().await,
                Ok(run) if run.status == RunStatus::Continued => {}
                Ok(run) => {
                    assert_ne!(
                        run.status,
                        RunStatus::Held,
                        "no scenario trips the safeguard"
                    );
                    self.tally.sync_failures += 1;
                }
                Err(_) => self.tally.sync_failures += 1,
            }
        }
        panic!(
            "no sync completed in 60 attempts ({})",
            self.proxy.stats().summary()
        );
    }

    /// Starts a sync and kills it after `after` unless it ended first; true if killed.
    pub async fn sync_killed_after(&mut self, mode: SyncMode, after: Duration) -> bool {
        let engine = self.engine.clone();
        let request = self.request(mode);
        let options = RunOptions {
            page_size: Some(5),
            ..RunOptions::default()
        };
        let task = tokio::spawn(async move { run_sync(&engine, &request, &options).await });
        tokio::time::sleep(after).await;
        self.tally.sync_attempts += 1;
        if task.is_finished() {
            return false;
        }
        task.abort();
        let _ = task.await;
        self.tally.kills += 1;
        // The dead run holds the lease until it expires.
        self.expire_lease().await;
        true
    }

    async fn receive(&self, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        aws_sdk_sqs::Client::new(&self.stack.sdk)
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .unwrap()
            .messages()
            .to_vec()
    }

    /// Sets the change and retry queues' visibility timeout, so messages a killed
    /// process had received come back within seconds.
    pub async fn visibility_timeout(&self, seconds: u32) {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        for url in [&self.stack.queue_url, &self.retry_url] {
            sqs.set_queue_attributes()
                .queue_url(url)
                .attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string())
                .send()
                .await
                .unwrap();
        }
    }

    /// Messages visible, in flight or delayed on `url`.
    async fn backlog(&self, url: &str) -> u64 {
        let attrs = aws_sdk_sqs::Client::new(&self.stack.sdk)
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let map = attrs.attributes().cloned().unwrap_or_default();
        [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ]
        .iter()
        .filter_map(|k| map.get(k).and_then(|v| v.parse::<u64>().ok()))
        .sum()
    }

    /// Feeds the change and retry queues to the dispatcher as Lambda's event source
    /// would, until both are empty (delayed retries included). With `kill_share`, that
    /// share of invocations is killed at a random point; its messages come back.
    pub async fn drain(&mut self, kill_share: f64) {
        let sqs = aws_sdk_sqs::Client::new(&self.stack.sdk);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let queues = [self.stack.queue_url.clone(), self.retry_url.clone()];
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queues did not drain in 120 s ({})",
                self.proxy.stats().summary()
            );
            let mut idle = true;
            for (i, url) in queues.iter().enumerate() {
                let messages = self.receive(url).await;
                if messages.is_empty() {
                    continue;
                }
                idle = false;
                let is_change = i == 0;
                if is_change {
                    self.note_seen(&messages);
                } else {
                    self.tally.target_retries += messages.len() as u64;
                }
                self.tally.batches += 1;
                self.maybe_outage(0.2);
                let engine = self.engine.clone();
                let event = LambdaEvent::new(sqs_event(&messages), Context::default());
                let task = tokio::spawn(async move { dispatcher::handler(&engine, event).await });
                let failed: BTreeSet<String> = if self.rng.random_bool(kill_share) {
                    let after = Duration::from_millis(self.rng.random_range(0..400));
                    tokio::time::sleep(after).await;
                    if task.is_finished() {
                        failed_ids(task.await.unwrap())
                    } else {
                        task.abort();
                        let _ = task.await;
                        self.tally.kills += 1;
                        // Nothing was acknowledged: every message comes back.
                        messages
                            .iter()
                            .filter_map(|m| m.message_id().map(str::to_string))
                            .collect()
                    }
                } else {
                    failed_ids(task.await.unwrap())
                };
                for m in &messages {
                    let id = m.message_id().unwrap_or_default();
                    let handle = m.receipt_handle().unwrap();
                    let event_id = is_change.then(|| change_event_id(m)).flatten();
                    if !failed.contains(id) {
                        if let Some(e) = event_id {
                            self.fates.handled.insert(e);
                        }
                        sqs.delete_message()
                            .queue_url(url)
                            .receipt_handle(handle)
                            .send()
                            .await
                            .unwrap();
                        continue;
                    }
                    self.tally.redeliveries += 1;
                    let receives: u32 = m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    if receives >= MAX_RECEIVES {
                        if let Some(e) = event_id {
                            self.fates.dead_lettered.insert(e);
                        }
                        sqs.delete_message()
                            .queue_url(url)
                            .receipt_handle(handle)
                            .send()
                            .await
                            .unwrap();
                    } else {
                        // The visibility timeout runs out at once.
                        sqs.change_message_visibility()
                            .queue_url(url)
                            .receipt_handle(handle)
                            .visibility_timeout(0)
                            .send()
                            .await
                            .unwrap();
                    }
                }
            }
            if idle {
                let mut backlog = 0;
                for url in &queues {
                    backlog += self.backlog(url).await;
                }
                if backlog == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }

    fn note_seen(&mut self, messages: &[aws_sdk_sqs::types::Message]) {
        for m in messages {
            let Some(body) = m.body().and_then(|b| serde_json::from_str::<Value>(b).ok()) else {
                continue;
            };
            let d = &body["detail"];
            if let Some(id) = d["id"].as_str() {
                self.fates.seen.insert(
                    id.to_string(),
                    (
                        d["type"].as_str().unwrap_or_default().to_string(),
                        d["objectId"].as_str().unwrap_or_default().to_string(),
                        d["version"].as_u64().unwrap_or_default(),
                    ),
                );
            }
        }
    }

    /// Every account on the SCIM server.
    pub async fn scim_accounts(&self) -> Vec<Value> {
        let list: Value = reqwest::Client::new()
            .get(format!("{}/v2/Users?count=10000", self.scim.base_url()))
            .bearer_auth(SCIM_TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        list["Resources"].as_array().cloned().unwrap_or_default()
    }

    /// Prints what the scenario did: calls, faults, retries and the harness's part.
    pub fn report(&self, scenario: &str) {
        let stats = self.proxy.stats();
        println!(
            "{scenario}: {}; {} of {} AWS calls faulted ({} outages armed); {:?}; receiver 503s {}; events seen {}, dead-lettered {}",
            stats.summary(),
            stats.total_faults(),
            stats.total_calls(),
            self.outages_armed,
            self.tally,
            self.receiver.failed(),
            self.fates.seen.len(),
            self.fates.dead_lettered.len(),
        );
    }
}

fn failed_ids(
    response: Result<aws_lambda_events::event::sqs::SqsBatchResponse, lambda_runtime::Error>,
) -> BTreeSet<String> {
    response
        .expect("the dispatcher reports failures per message, never for the whole batch")
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect()
}

fn change_event_id(m: &aws_sdk_sqs::types::Message) -> Option<String> {
    let body: Value = serde_json::from_str(m.body()?).ok()?;
    body["detail"]["id"].as_str().map(str::to_string)
}
