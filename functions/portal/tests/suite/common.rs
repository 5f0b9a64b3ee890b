//! What the portal tests share: a whole local stack in the test process, as `dev` runs
//! it (the setup page and the admin API on one loopback port, the embedded adapters,
//! the BambooHR simulator), a receiving app that verifies Standard Webhooks signatures
//! with the official library, and the step that delivers what a sync published.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use bamboohr_simulator::{SimConfig, SimServer, Simulator};
use domain::{ChangeEvent, DirectoryId};
use embedded_adapters::{
    FileSecrets, InProcessBus, InProcessRetryQueue, InProcessScheduler, SqliteStore,
};
use lambda_runtime::{Context, LambdaEvent};
use ports::SystemClock;
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::Engine;
use tokio::sync::{mpsc, Mutex};

/// The BambooHR API key the simulator accepts.
pub const GOOD_KEY: &str = "bamboo-good-key-0123456789";
/// Employees in the simulated company.
pub const EMPLOYEES: usize = 8;
/// The app's Standard Webhooks signing secret.
pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The operator's bearer token for the local admin API.
const ADMIN_TOKEN: &str = "portal-tests-admin-token";

/// The stack.
pub struct Stack {
    /// The engine behind the page and the admin API.
    pub engine: Engine,
    /// `http://127.0.0.1:PORT`: the setup page (`/setup/`) and the admin API.
    pub base_url: String,
    /// The simulated BambooHR company.
    pub sim: Simulator,
    /// Where it is served.
    pub sim_url: String,
    events: Mutex<mpsc::UnboundedReceiver<ChangeEvent>>,
    http: reqwest::Client,
    _sim_server: SimServer,
    _tmp: tempfile::TempDir,
}

impl Stack {
    /// Starts everything.
    pub async fn start() -> Self {
        Self::start_with(Vec::new()).await
    }

    /// Starts everything, the simulated company withholding `restricted` fields from
    /// the API key.
    pub async fn start_with(restricted: Vec<String>) -> Self {
        let sim = Simulator::generate(SimConfig {
            api_key: GOOD_KEY.into(),
            employees: EMPLOYEES,
            restricted_fields: restricted,
            ..SimConfig::default()
        });
        let sim_server = sim.serve().await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (bus, events) = InProcessBus::new();
        let engine = Engine::new(
            Arc::new(SqliteStore::in_memory()),
            Arc::new(FileSecrets::open(tmp.path().join("secrets.json"))),
            Arc::new(bus),
            Arc::new(SystemClock),
        )
        .with_scheduler(Arc::new(InProcessScheduler::new()))
        .with_retry_queue(Arc::new(InProcessRetryQueue::new(Arc::new(SystemClock))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let api = Arc::new(
            admin::AdminApi::new(engine.clone(), None).with_setup_base_url(Some(base_url.clone())),
        );
        // The page changes configuration through the admin API on the same server, over
        // HTTP, as it does through API Gateway on a stack.
        let page = Arc::new(portal::Portal::new(
            engine.clone(),
            admin::client::AdminClient::new(admin::client::Transport::Dev {
                url: base_url.clone(),
                token: SecretString::from(ADMIN_TOKEN),
            })
            .unwrap(),
            portal::Cookies::Loopback,
        ));
        let app = portal::local::router(page).merge(admin::local::router(
            api,
            admin::local::LocalAuth {
                token: SecretString::from(ADMIN_TOKEN),
                actor: "local:operator".into(),
            },
        ));
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            engine,
            base_url,
            sim_url: sim_server.base_url.clone(),
            sim,
            events: Mutex::new(events),
            http: reqwest::Client::new(),
            _sim_server: sim_server,
            _tmp: tmp,
        }
    }

    /// A call to the admin API as the operator: the status and the JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base_url);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let resp = req.bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A setup link for `directory` made through the admin API, on the simulator: its
    /// id and URL.
    pub async fn setup_link(&self, directory: &str) -> (String, String) {
        self.setup_link_to(directory, &self.sim_url).await
    }

    /// A setup link for `directory` whose page connects to BambooHR at `bamboohr`.
    pub async fn setup_link_to(&self, directory: &str, bamboohr: &str) -> (String, String) {
        let (status, body) = self
            .admin(
                "POST",
                &format!("/admin/directories/{directory}/setup-links"),
                Some(json!({ "bamboohrBaseUrl": bamboohr })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["link"]["id"].as_str().unwrap().to_string(),
            body["url"].as_str().unwrap().to_string(),
        )
    }

    /// Delivers everything published so far through the dispatcher handler, as the
    /// change queue feeds it; how many events.
    pub async fn deliver_published(&self) -> usize {
        let mut events = Vec::new();
        {
            let mut rx = self.events.lock().await;
            while let Ok(e) = rx.try_recv() {
                events.push(e);
            }
        }
        for chunk in events.chunks(10) {
            let mut sqs = SqsEvent::default();
            sqs.records = chunk
                .iter()
                .map(|e| dispatcher::change_queue_message(e, &e.id.to_string()))
                .collect();
            let resp = dispatcher::handler(&self.engine, LambdaEvent::new(sqs, Context::default()))
                .await
                .unwrap();
            assert!(
                resp.batch_item_failures.is_empty(),
                "every change delivered: {:?}",
                resp.batch_item_failures
            );
        }
        events.len()
    }

    /// The directory as stored.
    pub async fn directory(&self, id: &str) -> Option<domain::Directory> {
        self.engine
            .store
            .get_directory(&DirectoryId::parse(id).unwrap())
            .await
            .unwrap()
    }
}

/// Where this run's screenshots go: `<target dir>/setup-page-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| test_peers::workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        test_peers::workspace_root().join(target)
    };
    target.join("setup-page-screenshots")
}

/// The receiving app (tests/peers/webhook_receiver.py, the official Standard Webhooks
/// library): answers 204 only to deliveries whose signature verifies.
pub fn receiver() -> test_peers::PeerProcess {
    test_peers::spawn_python_peer(
        &test_peers::workspace_root().join("tests/peers/webhook_receiver.py"),
        &[],
        &[("WEBHOOK_SECRET", WHSEC)],
    )
}
