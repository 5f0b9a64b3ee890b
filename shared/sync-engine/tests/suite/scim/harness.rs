//! An engine on the embedded adapters whose directory has one SCIM target: the real
//! `scim2-server` from PyPI (tests/peers/scim_server.py, served from memory on a free
//! port behind a bearer token). Every test starts its own server, so account counts
//! and versions are exact.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;

use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryUser, Email, EmailKind, EmployeeId, ScimConfig,
    Target, TargetFilter, TargetId, TargetKind, UserState,
};
use embedded_adapters::{FileSecrets, InProcessBus, InProcessRetryQueue, SqliteStore};
use ports::{DirectorySecrets, FixedClock, SecretStore, Store, TargetSecrets, UserWrite};
use secrecy::SecretString;
use serde_json::{json, Value};
use sync_engine::deliver::dispatch::{dispatch, TargetOutcome};
use sync_engine::deliver::targets::scim::reconcile::{
    reconcile_target_with, ReconcileOptions, ReconcileReport,
};
use sync_engine::Engine;
use test_peers::PeerProcess;
use time::OffsetDateTime;

/// The only token the SCIM peer accepts.
pub const TOKEN: &str = "scim-test-token";
/// The enterprise extension's URN (its attributes' prefix).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub struct ScimHarness {
    pub engine: Engine,
    pub store: Arc<SqliteStore>,
    pub dir: DirectoryId,
    pub target: TargetId,
    pub scim: PeerProcess,
    /// Every request the engine sent to the SCIM server: method and path with query.
    pub sent: Sent,
    _tmp: tempfile::TempDir,
}

/// The requests a [`counting_proxy`] passed on.
pub type Sent = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback proxy in front of `upstream` that records each request it passes on,
/// so tests can count what the engine sent (the SCIM server itself cannot say).
async fn counting_proxy(upstream: String) -> (String, Sent) {
    let sent: Sent = Arc::default();
    let state = (upstream, sent.clone(), reqwest::Client::new());
    let app = Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, sent)
}

async fn forward(
    State((upstream, sent, http)): State<(String, Sent, reqwest::Client)>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    sent.lock()
        .unwrap()
        .push((method.to_string(), path.clone()));
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let mut out = http.request(method, format!("{upstream}{path}")).body(body);
    for name in ["authorization", "content-type", "accept", "if-match"] {
        if let Some(v) = headers.get(name) {
            out = out.header(name, v.as_bytes());
        }
    }
    let answer = out.send().await.unwrap();
    let status = answer.status().as_u16();
    let etag = answer.headers().get("etag").cloned();
    let bytes = answer.bytes().await.unwrap();
    let mut resp = (axum::http::StatusCode::from_u16(status).unwrap(), bytes).into_response();
    resp.headers_mut()
        .insert("content-type", "application/scim+json".parse().unwrap());
    if let Some(tag) = etag {
        resp.headers_mut()
            .insert("etag", tag.as_bytes().try_into().unwrap());
    }
    resp
}

pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_334_400).unwrap()
}

/// A directory whose one target is a fresh scim2-server with `config`.
pub async fn scim_harness(config: ScimConfig) -> ScimHarness {
    scim_harness_filtered(config, TargetFilter::default()).await
}

/// As [`scim_harness`], with a target filter.
pub async fn scim_harness_filtered(config: ScimConfig, filter: TargetFilter) -> ScimHarness {
    let script = test_peers::workspace_root().join("tests/peers/scim_server.py");
    let scim = test_peers::spawn_python_peer(&script, &[], &[("SCIM_BEARER_TOKEN", TOKEN)]);
    let (proxy, sent) = counting_proxy(scim.base_url()).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::in_memory());
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    let (bus, _events) = InProcessBus::new();
    let clock = Arc::new(FixedClock::new(now()));
    let dir = DirectoryId::parse("acme").unwrap();
    let target = TargetId::parse("scim").unwrap();
    let mut d = Directory::new(dir.clone(), "acme", "acme").unwrap();
    d.version = 1;
    d.targets = vec![Target {
        id: target.clone(),
        kind: TargetKind::Scim {
            base_url: format!("{proxy}/v2"),
            scim: config,
        },
        filter,
        enabled: true,
    }];
    store.put_directory(&d, None).await.unwrap();
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "scim".to_string(),
        TargetSecrets {
            bearer_token: Some(SecretString::from(TOKEN)),
            ..Default::default()
        },
    );
    secrets
        .put(
            "acme",
            &DirectorySecrets {
                targets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let engine = Engine::new(store.clone(), secrets, Arc::new(bus), clock.clone())
        .with_retry_queue(Arc::new(InProcessRetryQueue::new(clock)));
    ScimHarness {
        engine,
        store,
        dir,
        target,
        scim,
        sent,
        _tmp: tmp,
    }
}

/// An active employee with a work email `first.last@acme.test`.
pub fn employee(dir: &DirectoryId, id: &str, first: &str, last: &str) -> DirectoryUser {
    let mut u = DirectoryUser::new(
        dir.clone(),
        EmployeeId::parse(id).unwrap(),
        UserState::Active,
    );
    u.first_name = Some(first.into());
    u.last_name = Some(last.into());
    u.job_title = Some("Engineer".into());
    u.department = Some("R&D".into());
    u.emails = vec![Email {
        value: format!("{}.{}@acme.test", first.to_lowercase(), last.to_lowercase()),
        kind: EmailKind::Work,
        primary: true,
    }];
    u
}

impl ScimHarness {
    /// Stores `user` as the next version of that employee and returns its event.
    pub async fn save(&self, mut user: DirectoryUser) -> ChangeEvent {
        let before = self
            .store
            .get_user(&self.dir, &user.employee_id)
            .await
            .unwrap();
        user.version = before.as_ref().map_or(1, |b| b.version + 1);
        user.fingerprint = user.compute_fingerprint();
        let event = ChangeEvent::for_user_write(before.as_ref(), &user, now());
        self.store
            .write_user(&UserWrite {
                user,
                expected_version: before.map(|b| b.version),
                events: vec![event.clone()],
            })
            .await
            .unwrap();
        event
    }

    /// Stores `user` and dispatches its event; returns what the SCIM target did.
    pub async fn push(&self, user: DirectoryUser) -> TargetOutcome {
        let event = self.save(user).await;
        let report = dispatch(&self.engine, &event).await.unwrap();
        assert_eq!(report.targets.len(), 1);
        report.targets.into_iter().next().unwrap().1
    }

    /// Pushes and expects a delivery.
    pub async fn deliver(&self, user: DirectoryUser) {
        let outcome = self.push(user).await;
        assert!(
            matches!(outcome, TargetOutcome::Delivered { .. }),
            "expected a delivery, got {outcome:?}"
        );
    }

    pub async fn stored(&self, id: &str) -> DirectoryUser {
        self.store
            .get_user(&self.dir, &EmployeeId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    fn users_url(&self) -> String {
        format!("{}/v2/Users", self.scim.base_url())
    }

    /// Every account on the SCIM server.
    pub async fn accounts(&self) -> Vec<Value> {
        let list: Value = reqwest::Client::new()
            .get(format!("{}?count=1000", self.users_url()))
            .bearer_auth(TOKEN)
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

    /// The only account on the server.
    pub async fn only_account(&self) -> Value {
        let mut all = self.accounts().await;
        assert_eq!(all.len(), 1, "exactly one account: {all:#?}");
        all.remove(0)
    }

    /// The account whose externalId is `employee_id`.
    pub async fn account_of(&self, employee_id: &str) -> Value {
        let all = self.accounts().await;
        let mine: Vec<&Value> = all
            .iter()
            .filter(|a| a["externalId"] == employee_id)
            .collect();
        assert_eq!(mine.len(), 1, "one account of {employee_id}: {all:#?}");
        mine[0].clone()
    }

    /// Creates an account directly at the SCIM server, as another provisioner would.
    pub async fn pre_create(&self, account: Value) -> Value {
        reqwest::Client::new()
            .post(self.users_url())
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(account.to_string())
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Changes an account at the server, as its admins would: a PATCH `replace`.
    pub async fn admin_sets(&self, account: &Value, value: Value) {
        let id = account["id"].as_str().unwrap();
        reqwest::Client::new()
            .patch(format!("{}/{id}", self.users_url()))
            .bearer_auth(TOKEN)
            .header("content-type", "application/scim+json")
            .body(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": value}],
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Deletes an account at the server, as its admins would.
    pub async fn admin_deletes(&self, account: &Value) {
        let id = account["id"].as_str().unwrap();
        reqwest::Client::new()
            .delete(format!("{}/{id}", self.users_url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    /// Replaces the target's SCIM settings (and filter), as the control plane would.
    pub async fn reconfigure(&self, change: impl FnOnce(&mut ScimConfig, &mut TargetFilter)) {
        let mut d = self.store.get_directory(&self.dir).await.unwrap().unwrap();
        let t = &mut d.targets[0];
        let TargetKind::Scim { scim, .. } = &mut t.kind else {
            unreachable!("the harness target is SCIM")
        };
        change(scim, &mut t.filter);
        let expected = d.version;
        d.version += 1;
        self.store.put_directory(&d, Some(expected)).await.unwrap();
    }

    /// The requests sent so far, forgetting them: (method, path with query).
    pub fn take_sent(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }

    /// Runs the target reconciliation, without pacing (a local peer).
    pub async fn reconcile(&self) -> ReconcileReport {
        let opts = ReconcileOptions {
            page_size: 2,
            min_interval: std::time::Duration::ZERO,
            ..ReconcileOptions::default()
        };
        reconcile_target_with(&self.engine, &self.dir, &self.target, opts)
            .await
            .unwrap()
    }
}

/// Each account's id with its version, to show which were written.
pub fn versions(accounts: &[Value]) -> std::collections::BTreeMap<String, Value> {
    accounts
        .iter()
        .map(|a| {
            (
                a["externalId"].as_str().unwrap_or("-").to_string(),
                a["meta"]["version"].clone(),
            )
        })
        .collect()
}
