//! Shared setup of the webhook tests: directories on the embedded adapters, a store that
//! can be told to fail, and API Gateway HTTP API (v2) events built from the fixture that
//! `sam local generate-event apigateway http-api-proxy` produces.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use domain::{
    ChangeEvent, Directory, DirectoryId, DirectoryState, DirectoryUser, EmployeeId, EventId,
    TargetId,
};
use embedded_adapters::{FileSecrets, InProcessBus, SqliteStore};
use lambda_http::Body;
use ports::{
    DirectorySecrets, FixedClock, LedgerAdvance, RefreshRequest, SecretStore, Store, StoreError,
    UserFingerprint, UserWrite,
};
use secrecy::SecretString;
use sync_engine::Engine;
use time::OffsetDateTime;
use tokio::sync::mpsc::UnboundedReceiver;

/// The webhook private key of `acme`.
pub const KEY: &str = "bamboohr-webhook-private-key";
/// The key of another directory, `globex`.
pub const OTHER_KEY: &str = "another-company-key";
/// The URL token of `tokenco`.
pub const URL_TOKEN: &str = "url-token-of-tokenco";
/// "Now" for every test: 2026-11-23T08:00:00Z.
pub const NOW: i64 = 1_795_420_800;

/// A store that delegates to a [`SqliteStore`] and, while told to, fails every write as
/// an unreachable DynamoDB would (reads keep working, so the directory still loads).
pub struct FlakyStore {
    inner: SqliteStore,
    failing: AtomicBool,
}

impl FlakyStore {
    fn new() -> Self {
        Self {
            inner: SqliteStore::in_memory(),
            failing: AtomicBool::new(false),
        }
    }

    /// While failing, writes return `StoreError::Unavailable`.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                reason: "test store set to fail".into(),
            });
        }
        Ok(())
    }
}

// The poller's and dispatcher's store parts pass straight through.
#[async_trait]
impl ports::SyncStore for FlakyStore {
    async fn list_groups(&self, d: &DirectoryId) -> Result<Vec<domain::Group>, StoreError> {
        self.inner.list_groups(d).await
    }
    async fn write_group(&self, w: &ports::GroupWrite) -> Result<(), StoreError> {
        self.check()?;
        self.inner.write_group(w).await
    }
    async fn append_events(&self, d: &DirectoryId, e: &[ChangeEvent]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.append_events(d, e).await
    }
    async fn quarantine_events(
        &self,
        d: &DirectoryId,
        e: &[ports::QuarantinedEvent],
    ) -> Result<(), StoreError> {
        self.inner.quarantine_events(d, e).await
    }
    async fn list_quarantined(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ports::QuarantinedEvent>, StoreError> {
        self.inner.list_quarantined(d, limit).await
    }
    async fn put_run(&self, r: &domain::SyncRun) -> Result<(), StoreError> {
        self.inner.put_run(r).await
    }
    async fn get_run(
        &self,
        d: &DirectoryId,
        id: &domain::RunId,
    ) -> Result<Option<domain::SyncRun>, StoreError> {
        self.inner.get_run(d, id).await
    }
    async fn list_runs(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<domain::SyncRun>, StoreError> {
        self.inner.list_runs(d, limit).await
    }
    async fn acquire_lease(
        &self,
        d: &DirectoryId,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.acquire_lease(d, holder, now, until).await
    }
    async fn release_lease(&self, d: &DirectoryId, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(d, holder).await
    }
    async fn get_checkpoint(&self, d: &DirectoryId) -> Result<Option<String>, StoreError> {
        self.inner.get_checkpoint(d).await
    }
    async fn put_checkpoint(&self, d: &DirectoryId, data: &str) -> Result<(), StoreError> {
        self.inner.put_checkpoint(d, data).await
    }
    async fn clear_checkpoint(&self, d: &DirectoryId) -> Result<(), StoreError> {
        self.inner.clear_checkpoint(d).await
    }
}

#[async_trait]
impl ports::SetupLinkStore for FlakyStore {
    async fn get_setup_link(
        &self,
        d: &DirectoryId,
        id: &str,
    ) -> Result<Option<ports::SetupLink>, StoreError> {
        self.inner.get_setup_link(d, id).await
    }
    async fn put_setup_link(
        &self,
        link: &ports::SetupLink,
        expected: Option<u64>,
    ) -> Result<(), StoreError> {
        self.inner.put_setup_link(link, expected).await
    }
    async fn list_setup_links(&self, d: &DirectoryId) -> Result<Vec<ports::SetupLink>, StoreError> {
        self.inner.list_setup_links(d).await
    }
}

#[async_trait]
impl ports::AuditStore for FlakyStore {
    async fn append_audit(&self, e: &ports::AuditEntry) -> Result<(), StoreError> {
        self.inner.append_audit(e).await
    }
    async fn list_audit(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ports::AuditEntry>, StoreError> {
        self.inner.list_audit(d, limit).await
    }
    async fn put_evidence(&self, r: &ports::EvidenceRow) -> Result<bool, StoreError> {
        self.inner.put_evidence(r).await
    }
    async fn list_evidence(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ports::EvidenceRow>, StoreError> {
        self.inner.list_evidence(d, limit).await
    }
}

#[async_trait]
impl ports::DeliveryStore for FlakyStore {
    async fn put_delivery(&self, r: &ports::DeliveryRecord) -> Result<(), StoreError> {
        self.inner.put_delivery(r).await
    }
    async fn get_delivery(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
        o: &str,
    ) -> Result<Option<ports::DeliveryRecord>, StoreError> {
        self.inner.get_delivery(d, t, o).await
    }
    async fn list_deliveries(
        &self,
        d: &DirectoryId,
        q: &ports::DeliveryQuery,
    ) -> Result<Vec<ports::DeliveryRecord>, StoreError> {
        self.inner.list_deliveries(d, q).await
    }
    async fn get_target_account(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
        o: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.get_target_account(d, t, o).await
    }
    async fn put_target_account(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
        o: &str,
        a: &str,
    ) -> Result<(), StoreError> {
        self.inner.put_target_account(d, t, o, a).await
    }
    async fn delete_target_account(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
        o: &str,
    ) -> Result<(), StoreError> {
        self.inner.delete_target_account(d, t, o).await
    }
    async fn get_breaker(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
    ) -> Result<ports::BreakerState, StoreError> {
        self.inner.get_breaker(d, t).await
    }
    async fn put_breaker(
        &self,
        d: &DirectoryId,
        t: &domain::TargetId,
        b: &ports::BreakerState,
    ) -> Result<(), StoreError> {
        self.inner.put_breaker(d, t, b).await
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn get_directory(&self, id: &DirectoryId) -> Result<Option<Directory>, StoreError> {
        self.inner.get_directory(id).await
    }
    async fn put_directory(&self, d: &Directory, expected: Option<u64>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_directory(d, expected).await
    }
    async fn list_directories(&self) -> Result<Vec<Directory>, StoreError> {
        self.inner.list_directories().await
    }
    async fn get_user(
        &self,
        d: &DirectoryId,
        e: &EmployeeId,
    ) -> Result<Option<DirectoryUser>, StoreError> {
        self.inner.get_user(d, e).await
    }
    async fn list_users(&self, d: &DirectoryId) -> Result<Vec<DirectoryUser>, StoreError> {
        self.inner.list_users(d).await
    }
    async fn user_fingerprints(&self, d: &DirectoryId) -> Result<Vec<UserFingerprint>, StoreError> {
        self.inner.user_fingerprints(d).await
    }
    async fn write_user(&self, w: &UserWrite) -> Result<(), StoreError> {
        self.check()?;
        self.inner.write_user(w).await
    }
    async fn pending_events(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>, StoreError> {
        self.inner.pending_events(d, limit).await
    }
    async fn mark_published(&self, d: &DirectoryId, ids: &[EventId]) -> Result<(), StoreError> {
        self.check()?;
        self.inner.mark_published(d, ids).await
    }
    async fn ledger_get(
        &self,
        d: &DirectoryId,
        t: &TargetId,
        o: &str,
    ) -> Result<Option<u64>, StoreError> {
        self.inner.ledger_get(d, t, o).await
    }
    async fn ledger_advance(
        &self,
        d: &DirectoryId,
        t: &TargetId,
        o: &str,
        v: u64,
    ) -> Result<LedgerAdvance, StoreError> {
        self.check()?;
        self.inner.ledger_advance(d, t, o, v).await
    }
    async fn record_refresh_requests(
        &self,
        d: &DirectoryId,
        e: &[EmployeeId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.record_refresh_requests(d, e, at).await
    }
    async fn pending_refresh_requests(
        &self,
        d: &DirectoryId,
        limit: usize,
    ) -> Result<Vec<RefreshRequest>, StoreError> {
        self.inner.pending_refresh_requests(d, limit).await
    }
    async fn clear_refresh_requests(
        &self,
        d: &DirectoryId,
        r: &[RefreshRequest],
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.clear_refresh_requests(d, r).await
    }
    async fn has_receipt(
        &self,
        d: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.has_receipt(d, key, now).await
    }
    async fn record_receipt(
        &self,
        d: &DirectoryId,
        key: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.record_receipt(d, key, now, expires_at).await
    }
    async fn purge_directory(&self, d: &DirectoryId) -> Result<ports::PurgeReport, StoreError> {
        self.check()?;
        self.inner.purge_directory(d).await
    }
}

/// Everything a handler test touches.
pub struct Fixture {
    pub deps: webhook::Deps,
    pub store: Arc<FlakyStore>,
    pub bus: Arc<InProcessBus>,
    pub secrets: Arc<FileSecrets>,
    pub clock: Arc<FixedClock>,
    pub events: UnboundedReceiver<ChangeEvent>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// Every event published so far.
    pub fn drain(&mut self) -> Vec<ChangeEvent> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    /// A stored user of a directory.
    pub async fn user(&self, directory: &str, employee: &str) -> Option<DirectoryUser> {
        self.store
            .get_user(&dir(directory), &EmployeeId::parse(employee).unwrap())
            .await
            .unwrap()
    }
}

/// A directory id.
pub fn dir(id: &str) -> DirectoryId {
    DirectoryId::parse(id).unwrap()
}

/// Directories: `acme` (key [`KEY`], alias "Given Name" -> "First Name"), `globex`
/// ([`OTHER_KEY`]), `paused-co`, `revoked-co`, and `tokenco` (allowed URL-token mode,
/// [`URL_TOKEN`] in its secret) plus `tokenless` (allowed, but no token in its secret).
pub async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore::new());
    let secrets = Arc::new(FileSecrets::open(tmp.path().join("secrets.json")));
    let setups: [(&str, DirectoryState, Option<&str>); 6] = [
        ("acme", DirectoryState::Active, None),
        ("globex", DirectoryState::Active, None),
        ("paused-co", DirectoryState::Paused, None),
        ("revoked-co", DirectoryState::Revoked, None),
        ("tokenco", DirectoryState::Active, Some(URL_TOKEN)),
        ("tokenless", DirectoryState::Active, None),
    ];
    for (id, state, token) in setups {
        let mut d = Directory::new(dir(id), id, id).unwrap();
        d.version = 1;
        d.state = state;
        d.webhook_url_token_allowed = matches!(id, "tokenco" | "tokenless");
        if id == "acme" {
            d.field_aliases
                .insert("Given Name".into(), "First Name".into());
        }
        store.put_directory(&d, None).await.unwrap();
        let key = if id == "globex" { OTHER_KEY } else { KEY };
        secrets
            .put(
                id,
                &DirectorySecrets {
                    webhook_keys: vec![SecretString::from(key)],
                    webhook_url_token: token.map(SecretString::from),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let (bus, events) = InProcessBus::new();
    let bus = Arc::new(bus);
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::from_unix_timestamp(NOW).unwrap(),
    ));
    let engine = Engine::new(store.clone(), secrets.clone(), bus.clone(), clock.clone());
    let deps = webhook::Deps::new(engine);
    Fixture {
        deps,
        store,
        bus,
        secrets,
        clock,
        events,
        _dir: tmp,
    }
}

/// An API Gateway v2 event for `POST /webhooks/bamboohr/{directory}`.
pub struct Req {
    directory: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    query: Option<(String, String)>,
    content_type: Option<String>,
}

impl Req {
    /// A request with a JSON content type and no BambooHR headers.
    pub fn new(directory: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            directory: directory.into(),
            body: body.into(),
            headers: Vec::new(),
            query: None,
            content_type: Some("application/json".into()),
        }
    }

    /// Adds a header (lower-case name, as API Gateway v2 delivers them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_lowercase(), value.into()));
        self
    }

    /// Signs the body with `key` at `timestamp` as BambooHR does.
    pub fn signed_at(self, key: &str, timestamp: &str) -> Self {
        let sig = bamboohr_simulator::sign(key.as_bytes(), &self.body, timestamp);
        self.header("x-bamboohr-signature", &sig)
            .header("x-bamboohr-timestamp", timestamp)
    }

    /// Signs the body with `key` now.
    pub fn signed(self, key: &str) -> Self {
        self.signed_at(key, &NOW.to_string())
    }

    /// Sets (or with None, removes) the content type.
    pub fn content_type(mut self, ct: Option<&str>) -> Self {
        self.content_type = ct.map(str::to_string);
        self
    }

    /// Adds one query parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query = Some((name.into(), value.into()));
        self
    }

    /// The lambda_http request API Gateway would hand the function.
    pub fn build(self) -> lambda_http::Request {
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/http-api-proxy.json")).unwrap();
        let path = format!("/webhooks/bamboohr/{}", self.directory);
        event["rawPath"] = path.clone().into();
        event["requestContext"]["http"]["path"] = path.into();
        event["pathParameters"]["directory_id"] = self.directory.into();
        let headers = event["headers"].as_object_mut().unwrap();
        headers.remove("content-type");
        if let Some(ct) = self.content_type {
            headers.insert("content-type".into(), ct.into());
        }
        for (name, value) in self.headers {
            headers.insert(name, value.into());
        }
        if let Some((name, value)) = self.query {
            event["rawQueryString"] = format!("{name}={value}").into();
            event["queryStringParameters"] = serde_json::json!({ name: value });
        }
        event["body"] = base64::engine::general_purpose::STANDARD
            .encode(&self.body)
            .into();
        event["isBase64Encoded"] = true.into();
        lambda_http::request::from_str(&event.to_string()).unwrap()
    }
}

/// The response body as JSON.
pub fn json_body(resp: &lambda_http::Response<Body>) -> serde_json::Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Binary(b) => serde_json::from_slice(b).unwrap(),
        _ => serde_json::Value::Null,
    }
}

/// Sends a request through the real handler.
pub async fn send(f: &Fixture, req: Req) -> lambda_http::Response<Body> {
    webhook::handler(&f.deps, req.build()).await.unwrap()
}

/// A field-based payload for employee `id` with `fields`, BambooHR's shape.
pub fn field_based(id: &str, action: &str, fields: serde_json::Value) -> String {
    let changed: Vec<String> = fields
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    serde_json::json!({
        "employees": [{
            "id": id,
            "action": action,
            "timestamp": "2026-11-23T07:59:00Z",
            "changedFields": changed,
            "fields": fields,
        }]
    })
    .to_string()
}

/// Ada's full record under display names.
pub fn ada(first_name: &str) -> String {
    field_based(
        "42",
        "Updated",
        serde_json::json!({
            "First Name": first_name,
            "Last Name": "Lovelace",
            "Work Email": "ada@example.com",
            "Status": "Active",
            "Hire Date": "2020-01-06"
        }),
    )
}

/// An event-based payload, BambooHR's shape (`EmployeeUpdatedWebhookPayload` etc.).
pub fn event_based(kind: &str, employee: &str) -> String {
    serde_json::json!({
        "type": kind,
        "timestamp": "2026-11-23T07:59:30Z",
        "data": { "companyId": "12345", "employeeId": employee, "changedFields": ["firstName"] }
    })
    .to_string()
}
