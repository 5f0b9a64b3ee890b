//! Webhook deactivations and deletions count against the mass-change safeguard over its
//! window, as the poller's do per run: under it they are applied; once the window's
//! count would trip it, the webhook's removals are held for an operator (the directory
//! is held, `directory.held` is published) and still answered 2xx; a release applies
//! them through the next (full) run, as for a held poll. Against the BambooHR simulator,
//! whose employees are terminated before their webhooks are sent.

use crate::common;

use std::sync::Arc;

use bamboohr_simulator::{SimConfig, SimServer, Simulator};
use common::{json_body, Req, KEY};
use domain::{
    Directory, DirectoryId, DirectoryState, EmployeeId, EventType, SyncMode, SyncRequest, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_http::http::StatusCode;
use ports::{DirectorySecrets, FixedClock, SecretStore, Store};
use secrecy::SecretString;
use sync_engine::operate::{self, HoldDecision};
use sync_engine::reconcile::run::RunOptions;
use sync_engine::Engine;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

const API_KEY: &str = "safeguard-api-key";

/// Fields a BambooHR admin would have the field-based webhook send.
const FIELDS: [&str; 7] = [
    "First Name",
    "Last Name",
    "Work Email",
    "Status",
    "Hire Date",
    "Termination Date",
    "Job Title",
];

/// A directory synced from a served BambooHR simulator, its webhook handler in-process.
pub(crate) struct World {
    pub(crate) engine: Engine,
    pub(crate) deps: webhook::Deps,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) clock: Arc<FixedClock>,
    pub(crate) sim: Simulator,
    pub(crate) events: UnboundedReceiver<domain::ChangeEvent>,
    pub(crate) dir: DirectoryId,
    _server: SimServer,
    _tmp: tempfile::TempDir,
}

impl World {
    /// A synced directory of the simulator's company (safeguard: a tenth of the users,
    /// at least 5, webhooks counted over the default 60 minutes).
    pub(crate) async fn new() -> Self {
        let sim = Simulator::generate(SimConfig {
            api_key: API_KEY.into(),
            seed: 11,
            employees: 40,
            ..SimConfig::default()
        });
        let server = sim.serve().await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::in_memory());
        let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
        let dir = DirectoryId::parse("acme").unwrap();
        let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
        d.base_url = Some(server.base_url.clone());
        d.safeguard.max_share = 0.1;
        d.version = 1;
        store.put_directory(&d, None).await.unwrap();
        secrets
            .put(
                "acme",
                &DirectorySecrets {
                    bamboohr_api_key: Some(SecretString::from(API_KEY)),
                    webhook_keys: vec![SecretString::from(KEY)],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let (bus, events) = InProcessBus::new();
        // The simulator dates its company from today, so the engine's day is today.
        let clock = Arc::new(FixedClock::new(OffsetDateTime::now_utc()));
        let engine = Engine::new(store.clone(), secrets, Arc::new(bus), clock.clone());
        let mut w = World {
            deps: webhook::Deps::new(engine.clone()),
            engine,
            store,
            clock,
            sim,
            events,
            dir,
            _server: server,
            _tmp: tmp,
        };
        let run = w.sync(SyncMode::Full).await;
        assert_eq!(run.status, domain::RunStatus::Completed, "{:?}", run.errors);
        w.drain();
        w
    }

    pub(crate) async fn sync(&self, mode: SyncMode) -> domain::SyncRun {
        operate::run_sync(
            &self.engine,
            &SyncRequest {
                directory_id: self.dir.clone(),
                mode,
            },
            &RunOptions::default(),
        )
        .await
        .unwrap()
    }

    pub(crate) fn drain(&mut self) -> Vec<domain::ChangeEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    pub(crate) async fn live(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .store
            .list_users(&self.dir)
            .await
            .unwrap()
            .into_iter()
            .filter(|u| u.state == UserState::Active)
            .map(|u| u.employee_id.to_string())
            .collect();
        ids.sort();
        ids
    }

    pub(crate) async fn state_of(&self, id: &str) -> UserState {
        self.store
            .get_user(&self.dir, &EmployeeId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
            .state
    }

    pub(crate) async fn directory(&self) -> Directory {
        self.store.get_directory(&self.dir).await.unwrap().unwrap()
    }

    /// Signs `body` now as BambooHR does and sends it through the handler.
    pub(crate) async fn post(&self, body: Vec<u8>) -> lambda_http::Response<lambda_http::Body> {
        let at = self.clock_now().unix_timestamp().to_string();
        let req = Req::new("acme", body).signed_at(KEY, &at);
        webhook::handler(&self.deps, req.build()).await.unwrap()
    }

    pub(crate) fn clock_now(&self) -> OffsetDateTime {
        use ports::Clock;
        self.clock.now()
    }

    /// BambooHR terminates `id` today, then sends its field-based webhook.
    pub(crate) async fn terminate_by_webhook(
        &self,
        id: &str,
    ) -> lambda_http::Response<lambda_http::Body> {
        self.sim.terminate(id, OffsetDateTime::now_utc().date());
        let signed = self
            .sim
            .field_based_webhook(&[id.to_string()], &FIELDS, KEY.as_bytes());
        self.post(signed.body).await
    }
}

#[tokio::test]
async fn webhook_terminations_under_the_safeguard_are_applied_and_the_window_rolls_on() {
    let mut w = World::new().await;
    let live = w.live().await;
    assert!(live.len() >= 20, "{} live users", live.len());
    for id in &live[..3] {
        let resp = w.terminate_by_webhook(id).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
        assert_eq!(json_body(&resp)["result"]["updated"], 1);
        assert_eq!(w.state_of(id).await, UserState::Inactive);
    }
    let d = w.directory().await;
    assert_eq!(d.state, DirectoryState::Active);
    assert_eq!(d.webhook_removals_in_window(w.clock_now()), 3);
    assert!(w
        .drain()
        .iter()
        .all(|e| e.event_type == EventType::UserUpdated));

    // Three more within the hour would make six (over the minimum of five and a tenth
    // of the users): an hour later the first three have left the window.
    w.clock.advance(time::Duration::minutes(61));
    for id in &live[3..6] {
        let resp = w.terminate_by_webhook(id).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
        assert_eq!(w.state_of(id).await, UserState::Inactive);
    }
    let d = w.directory().await;
    assert_eq!(d.state, DirectoryState::Active);
    assert_eq!(d.webhook_removals_in_window(w.clock_now()), 3);
}

#[tokio::test]
async fn a_burst_of_webhook_terminations_over_the_safeguard_is_held_and_a_release_applies_it() {
    let mut w = World::new().await;
    let live = w.live().await;
    let active_before = live.len();
    // Five removals trip a tenth of at most 45 users.
    assert!(
        (20..=45).contains(&active_before),
        "{active_before} live users"
    );

    // Four terminations are under the minimum of five: applied.
    for id in &live[..4] {
        let resp = w.terminate_by_webhook(id).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
        assert_eq!(w.state_of(id).await, UserState::Inactive);
    }
    let _ = w.drain();

    // The fifth in the window trips it: held, answered 202 (accepted, durable).
    let resp = w.terminate_by_webhook(&live[4]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
    assert_eq!(json_body(&resp)["result"]["held"], 1);
    assert_eq!(w.state_of(&live[4]).await, UserState::Active, "not applied");
    let d = w.directory().await;
    assert_eq!(d.state, DirectoryState::Held);
    let hold = d.hold.clone().expect("a hold for the operator");
    assert_eq!(hold.would_deactivate, 1);
    assert_eq!(hold.sample, vec![live[4].clone()]);
    let held_events: Vec<_> = w
        .drain()
        .into_iter()
        .filter(|e| e.event_type == EventType::DirectoryHeld)
        .collect();
    assert_eq!(held_events.len(), 1, "directory.held is published");

    // While held, more terminations (and an event-based deletion) join the hold.
    for id in &live[5..7] {
        let resp = w.terminate_by_webhook(id).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
        assert_eq!(w.state_of(id).await, UserState::Active);
    }
    w.sim.delete(&live[7]);
    let deleted = w
        .sim
        .event_webhook("employee.deleted", &live[7], KEY.as_bytes());
    let resp = w.post(deleted.body).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
    assert_eq!(json_body(&resp)["result"]["held"], 1);
    assert_eq!(w.state_of(&live[7]).await, UserState::Active);
    let hold = w.directory().await.hold.unwrap();
    assert_eq!((hold.would_deactivate, hold.would_delete), (3, 1));
    assert_eq!(hold.sample.len(), 4);
    // Durable while held: each is a refresh request.
    let pending = w.store.pending_refresh_requests(&w.dir, 100).await.unwrap();
    let mut requested: Vec<String> = pending.iter().map(|r| r.employee_id.to_string()).collect();
    requested.sort();
    let mut expected = live[4..8].to_vec();
    expected.sort();
    assert_eq!(requested, expected);
    // A held directory's runs wait for the operator.
    assert_eq!(
        w.sync(SyncMode::Incremental).await.status,
        domain::RunStatus::Skipped
    );

    // The operator releases: the next run is full, skips the safeguard once, and
    // applies what BambooHR says of the held employees.
    let released = operate::resolve_hold(&w.engine, &w.dir, HoldDecision::Release, "operator")
        .await
        .unwrap();
    assert_eq!(released.state, DirectoryState::Active);
    let run = w.sync(SyncMode::Incremental).await;
    assert_eq!(run.mode, SyncMode::Full);
    assert_eq!(run.status, domain::RunStatus::Completed, "{:?}", run.errors);
    for id in &live[4..7] {
        assert_eq!(w.state_of(id).await, UserState::Inactive, "{id}");
    }
    assert_eq!(w.state_of(&live[7]).await, UserState::Deleted);
    let d = w.directory().await;
    assert_eq!(d.state, DirectoryState::Active);
    assert!(d.hold.is_none() && !d.safeguard_released);
}

#[tokio::test]
async fn event_based_terminations_fetched_by_the_targeted_run_count_in_the_same_window() {
    let mut w = World::new().await;
    let live = w.live().await;
    // Three field-based terminations: applied, three in the window.
    for id in &live[..3] {
        let resp = w.terminate_by_webhook(id).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", json_body(&resp));
    }
    // Two more arrive as event-based webhooks (ids only): refresh requests for the
    // targeted run, which would make five in the window: the run is held.
    for id in &live[3..5] {
        w.sim.terminate(id, OffsetDateTime::now_utc().date());
        let signed = w.sim.event_webhook("employee.updated", id, KEY.as_bytes());
        let resp = w.post(signed.body).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{}", json_body(&resp));
    }
    let run = w.sync(SyncMode::Targeted).await;
    assert_eq!(run.status, domain::RunStatus::Held, "{:?}", run.errors);
    for id in &live[3..5] {
        assert_eq!(w.state_of(id).await, UserState::Active, "{id} held");
    }
    let d = w.directory().await;
    assert_eq!(d.state, DirectoryState::Held);
    assert_eq!(d.hold.unwrap().would_deactivate, 2);
    assert_eq!(
        w.store
            .pending_refresh_requests(&w.dir, 10)
            .await
            .unwrap()
            .len(),
        2,
        "the requests stay for after the hold"
    );
    assert!(w
        .drain()
        .iter()
        .any(|e| e.event_type == EventType::DirectoryHeld));
}

#[tokio::test]
async fn a_targeted_run_under_the_safeguard_applies_and_counts_its_terminations() {
    let w = World::new().await;
    let live = w.live().await;
    for id in &live[..2] {
        w.sim.terminate(id, OffsetDateTime::now_utc().date());
        let signed = w.sim.event_webhook("employee.updated", id, KEY.as_bytes());
        assert_eq!(w.post(signed.body).await.status(), StatusCode::ACCEPTED);
    }
    let run = w.sync(SyncMode::Targeted).await;
    assert_eq!(run.status, domain::RunStatus::Completed, "{:?}", run.errors);
    assert_eq!(run.counts.deactivated, 2);
    for id in &live[..2] {
        assert_eq!(w.state_of(id).await, UserState::Inactive);
    }
    let d = w.directory().await;
    assert_eq!(d.webhook_removals_in_window(w.clock_now()), 2);
    assert!(w
        .store
        .pending_refresh_requests(&w.dir, 10)
        .await
        .unwrap()
        .is_empty());
}
