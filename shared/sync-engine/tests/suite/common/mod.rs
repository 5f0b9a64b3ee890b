//! Fixtures shared by the engine tests: an engine on the embedded adapters with a fixed
//! clock, and a local receiving app that records what it gets.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use domain::{ChangeEvent, Directory, DirectoryId, Target, TargetFilter, TargetId, TargetKind};
use embedded_adapters::{FileSecrets, InProcessBus, InProcessRetryQueue, SqliteStore};
use ports::{DirectorySecrets, FixedClock, SecretStore, Store, TargetSecrets};
use secrecy::SecretString;
use sync_engine::Engine;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

pub const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub struct Harness {
    pub engine: Engine,
    pub store: Arc<SqliteStore>,
    pub bus: Arc<InProcessBus>,
    pub events: UnboundedReceiver<ChangeEvent>,
    pub clock: Arc<FixedClock>,
    /// Where failed deliveries wait (deliveries require one).
    pub queue: Arc<InProcessRetryQueue>,
    pub dir: DirectoryId,
    _tmp: tempfile::TempDir,
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_334_400).unwrap()
}

/// An engine with one directory `acme` whose secret holds `api_key` and a signing
/// secret for every target id in `targets`.
pub async fn harness(api_key: &str, base_url: Option<String>, targets: Vec<Target>) -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    let (bus, events) = InProcessBus::new();
    let bus = Arc::new(bus);
    let clock = Arc::new(FixedClock::new(now()));
    let dir = DirectoryId::parse("acme").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.base_url = base_url;
    d.version = 1;
    let mut target_secrets = std::collections::BTreeMap::new();
    for t in &targets {
        target_secrets.insert(
            t.id.to_string(),
            TargetSecrets {
                signing_secrets: vec![SecretString::from(WHSEC)],
                ..Default::default()
            },
        );
    }
    d.targets = targets;
    store.put_directory(&d, None).await.unwrap();
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from(api_key)),
                webhook_keys: vec![SecretString::from("webhook-key")],
                targets: target_secrets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let queue = Arc::new(InProcessRetryQueue::new(clock.clone()));
    let engine = Engine::new(store.clone(), secrets, bus.clone(), clock.clone())
        .with_retry_queue(queue.clone());
    Harness {
        engine,
        queue,
        store,
        bus,
        events,
        clock,
        dir,
        _tmp: tmp,
    }
}

impl Harness {
    pub fn drain(&mut self) -> Vec<ChangeEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }
}

pub fn app_target(id: &str, url: &str) -> Target {
    Target {
        id: TargetId::parse(id).unwrap(),
        kind: TargetKind::app_webhook(url.to_string()),
        filter: TargetFilter::default(),
        enabled: true,
    }
}

/// What a receiving app got.
#[derive(Debug, Clone)]
pub struct Got {
    pub webhook_id: String,
    pub body: serde_json::Value,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Got>>>,
    status: Arc<Mutex<u16>>,
}

impl Receiver {
    pub fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
    pub fn respond_with(&self, status: u16) {
        *self.status.lock().unwrap() = status;
    }
}

type RecvState = (Arc<Mutex<Vec<Got>>>, Arc<Mutex<u16>>);

async fn receive(
    State((got, status)): State<RecvState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let code = *status.lock().unwrap();
    if code < 300 {
        got.lock().unwrap().push(Got {
            webhook_id: headers["webhook-id"].to_str().unwrap().to_string(),
            body: serde_json::from_slice(&body).unwrap(),
        });
    }
    StatusCode::from_u16(code).unwrap()
}

pub async fn receiver() -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(Mutex::new(204));
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state((got.clone(), status.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver { url, got, status }
}

/// Runs a full reconciliation of `id` now, recorded as the poller would record it.
pub async fn full_sync(
    engine: &Engine,
    id: &DirectoryId,
) -> Result<domain::SyncRun, sync_engine::EngineError> {
    sync_engine::operate::run_sync(
        engine,
        &domain::SyncRequest {
            directory_id: id.clone(),
            mode: domain::SyncMode::Full,
        },
        &sync_engine::reconcile::run::RunOptions::default(),
    )
    .await
}
