//! A BambooHR simulator for tests and the local stack, faithful to BambooHR's official
//! OpenAPI for the endpoints the sync uses: datasets v2 (`employee`), list employees
//! (cursor pages, `filter[ids]`, `filter[status]`, `_restrictedFields`), changed employees,
//! get employee, meta fields and lists, the directory and the webhooks API, behind HTTP
//! Basic (API key) or bearer auth.
//!
//! A [`Simulator`] holds one deterministic company ([`Simulator::generate`]) that tests
//! and the `/_sim/...` control API mutate (hire, update, terminate, rehire, delete);
//! faults (429 with Retry-After, 503, slow answers, dropped connections, truncated bodies)
//! are scheduled by request count; field-based and event-based webhooks are built and
//! signed the way BambooHR sends them and retried on 5xx on BambooHR's schedule (scalable
//! for tests). Also served: the field list, list fields, the directory, the webhooks API
//! (registered webhooks fire on control-API mutations) and the OAuth endpoints (the
//! consent page `/authorize.php`, and `/token.php`: the authorization-code grant with
//! single-use, short-lived codes, and the refresh-token grant with rotation). Exchanges
//! can be recorded for
//! contract tests ([`Simulator::start_recording`]).

#![warn(missing_docs)]

mod api;
mod api_list;
mod clock;
mod control;
mod employee;
mod error;
mod faults;
mod generate;
mod meta;
mod oauth;
mod odata;
mod record;
mod respond;
mod state;
mod training;
mod webhook;
mod webhooks_api;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::routing::{any, get, post};
use axum::Router;
use serde_json::{json, Value};
use time::{Date, OffsetDateTime};

pub use employee::{EmployeeStatus, Field, SimEmployee};
pub use error::SimError;
pub use faults::{ConnHandle, Fault, FaultPlan, RetryAfter};
pub use generate::LITMOS_ACCESS;
pub use record::Exchange;
pub use training::SimTrainingType;
pub use webhook::{
    deliver, deliver_with_retries, sign, DeliveryReport, RetrySchedule, SignedWebhook,
    RETRY_DELAYS_MINUTES, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

use crate::employee::format_timestamp;
use crate::state::{Action, State, WebhookTarget};

impl State {
    /// The field-based payload for employee `key` with `posted` (field id or alias ->
    /// the external name it is posted under), as a registered webhook's `postFields` ask.
    fn field_based_body_posted(&self, key: u64, posted: &[(String, String)]) -> Value {
        let Some(e) = self.employees.get(&key) else {
            return json!({ "employees": [] });
        };
        let change = self.last_change.get(&key);
        let action = change.map_or(Action::Updated, |c| c.action);
        let manager = self.manager_of(e);
        let mut values = serde_json::Map::new();
        if action != Action::Deleted {
            for (name, external) in posted {
                let v = e.value(&Field::from_any_name(name), manager);
                values.insert(
                    external.clone(),
                    v.map(Value::String).unwrap_or(Value::Null),
                );
            }
        }
        let changed: Vec<String> = match action {
            Action::Created => posted.iter().map(|(_, x)| x.clone()).collect(),
            Action::Updated => change
                .map(|c| c.fields.iter().map(Field::display_name).collect())
                .unwrap_or_default(),
            Action::Deleted => Vec::new(),
        };
        json!({ "employees": [{
            "id": e.employee_id,
            "action": action.as_str(),
            "timestamp": format_timestamp(e.last_changed),
            "changedFields": changed,
            "fields": values,
        }]})
    }
}

/// One registered webhook to fire: where, signed with what, and the body.
struct Fire {
    webhook_id: u64,
    url: String,
    private_key: Vec<u8>,
    /// The body; event-based bodies are filled in after the lock is released.
    body: Option<Vec<u8>>,
}

/// Which of BambooHR's two webhook payload families the simulator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookPayload {
    /// `{"employees": [{id, action, timestamp, changedFields, fields}]}` with display names.
    #[default]
    FieldBased,
    /// `{"type": "employee.created|updated|deleted", "timestamp", "data": {...}}`, ids only.
    EventBased,
}

/// How a simulated company behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The API key accepted over HTTP Basic (as the user name; any password).
    pub api_key: String,
    /// Seed of the generated company.
    pub seed: u64,
    /// Employees in the generated company.
    pub employees: usize,
    /// Fields the credential may not see, by any surface's name (`homeEmail`, `email`,
    /// `Work Email`, a custom field): `null` and listed in `_restrictedFields` on the list
    /// and dataset endpoints, omitted by get-employee.
    pub restricted_fields: Vec<String>,
    /// The largest `page[limit]` the list endpoint accepts (BambooHR: 100).
    pub page_limit_max: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_key: "sim-api-key".into(),
            seed: 1,
            employees: 25,
            restricted_fields: Vec::new(),
            page_limit_max: 100,
        }
    }
}

/// A simulated BambooHR company. Clones share the same company.
#[derive(Clone)]
pub struct Simulator {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("Simulator")
            .field("employees", &s.employees.len())
            .field("requests", &s.requests)
            .finish()
    }
}

/// A running simulator; stops serving when dropped.
#[derive(Debug)]
pub struct SimServer {
    /// `http://127.0.0.1:PORT`, the base URL to give a client.
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Simulator {
    /// A company generated from `cfg.seed` with `cfg.employees` employees, dated relative
    /// to today (UTC).
    pub fn generate(cfg: SimConfig) -> Self {
        Self::generate_at(cfg, OffsetDateTime::now_utc().date())
    }

    /// A company generated as on `today`: the same seed and day give the same company.
    pub fn generate_at(cfg: SimConfig, today: Date) -> Self {
        let employees = generate::company(cfg.seed, cfg.employees, today);
        Self::from_employees(cfg, employees)
    }

    /// A company of exactly these employees (ids that are missing, not numeric or repeated
    /// are assigned).
    pub fn from_employees(cfg: SimConfig, employees: Vec<SimEmployee>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(cfg, employees))),
        }
    }

    /// Reads a company file: a JSON array of [`SimEmployee`].
    pub fn from_company_file(cfg: SimConfig, path: &std::path::Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::CompanyFile {
            reason: e.to_string(),
        })?;
        let employees: Vec<SimEmployee> =
            serde_json::from_str(&text).map_err(|e| SimError::CompanyFile {
                reason: format!("not a JSON array of employees (line {})", e.line()),
            })?;
        Ok(Self::from_employees(cfg, employees))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the whole simulator down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The HTTP surface: BambooHR's API under `/api/...` (counted, faulted, authenticated)
    /// and the control API under `/_sim/...` (neither). Dropped-connection faults need the
    /// listener of [`Simulator::serve`]; elsewhere they answer 502.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/api/v2/datasets/{dataset}/data", post(api::dataset_data))
            .route("/api/v1/employees", get(api_list::list_employees))
            .route("/api/v1/employees/changed", get(api::changed))
            .route("/api/v1/employees/directory", get(meta::directory))
            .route("/api/v1/meta/fields", get(meta::meta_fields))
            .route("/api/v1/meta/lists", get(meta::meta_lists))
            .route(
                "/api/v1/webhooks",
                get(webhooks_api::list).post(webhooks_api::create),
            )
            .route(
                "/api/v1/webhooks/monitor_fields",
                get(webhooks_api::monitor_fields),
            )
            .route(
                "/api/v1/webhooks/{id}",
                get(webhooks_api::get)
                    .put(webhooks_api::update)
                    .delete(webhooks_api::delete),
            )
            .route("/api/v1/employees/{id}", get(api::get_employee))
            .route("/api/v1/training/type", get(training::list_types))
            .route(
                "/api/v1/training/record/employee/{id}",
                get(training::list_records),
            )
            .route("/api/{*rest}", any(api::not_found))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                api::gate,
            ))
            // Outermost, so faulted and refused answers are recorded as sent.
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                record::record,
            ))
            .with_state(self.clone());
        // The token endpoint authenticates the OAuth client itself, not an API credential,
        // so it sits outside the API gate; it is recorded like the API.
        let token = Router::new()
            .route("/token.php", post(oauth::token))
            .route("/authorize.php", get(oauth::authorize).post(oauth::decide))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                record::record,
            ))
            .with_state(self.clone());
        api.merge(token).merge(control::router(self.clone()))
    }

    /// Serves on `127.0.0.1` at a free port.
    pub async fn serve(&self) -> std::io::Result<SimServer> {
        self.serve_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves on `addr`.
    pub async fn serve_on(&self, addr: SocketAddr) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = self
            .router()
            .into_make_service_with_connect_info::<ConnHandle>();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(faults::SimListener(listener), app).await {
                tracing::warn!(error = %e, "simulator stopped");
            }
        });
        tracing::debug!(%addr, "simulator serving");
        Ok(SimServer {
            base_url: format!("http://{addr}"),
            addr,
            task,
        })
    }

    /// Every employee, deleted ones included (flagged), ordered by id.
    pub fn employees(&self) -> Vec<SimEmployee> {
        self.lock().employees.values().cloned().collect()
    }

    /// One employee by id, deleted or not.
    pub fn employee(&self, id: &str) -> Option<SimEmployee> {
        let id: u64 = id.trim().parse().ok()?;
        self.lock().employees.get(&id).cloned()
    }

    /// The custom field names the company knows.
    pub fn custom_fields(&self) -> Vec<String> {
        self.lock().custom_fields.iter().cloned().collect()
    }

    /// Adds an employee and returns its id (the given id if numeric and free, else the
    /// next one). A future hire date makes the status Inactive, as in BambooHR.
    pub fn hire(&self, e: SimEmployee) -> String {
        self.lock().hire(e)
    }

    /// Changes fields by canonical key ([`SimEmployee`]'s JSON names, e.g. `workEmail`,
    /// `jobTitle`; other keys are custom fields); `None` clears. Panics on an unknown id or
    /// an invalid value; see [`Simulator::try_update`].
    pub fn update(&self, id: &str, changes: BTreeMap<String, Option<String>>) {
        if let Err(e) = self.try_update(id, changes) {
            panic!("Simulator::update: {e}");
        }
    }

    /// [`Simulator::update`], reporting failures.
    pub fn try_update(
        &self,
        id: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<(), SimError> {
        self.lock().update(id, &changes)
    }

    /// Terminates on `date`: status Inactive (employment status "Terminated") once the date
    /// has come; a future date leaves the employee Active until then. Panics on an unknown
    /// id; see [`Simulator::try_terminate`].
    pub fn terminate(&self, id: &str, date: Date) {
        if let Err(e) = self.try_terminate(id, date) {
            panic!("Simulator::terminate: {e}");
        }
    }

    /// [`Simulator::terminate`], reporting failures.
    pub fn try_terminate(&self, id: &str, date: Date) -> Result<(), SimError> {
        self.lock().terminate(id, date)
    }

    /// Rehires with a new hire date, clearing the termination date: Active once the date
    /// has come. The employee keeps its id. Panics on an unknown id; see
    /// [`Simulator::try_rehire`].
    pub fn rehire(&self, id: &str, date: Date) {
        if let Err(e) = self.try_rehire(id, date) {
            panic!("Simulator::rehire: {e}");
        }
    }

    /// [`Simulator::rehire`], reporting failures.
    pub fn try_rehire(&self, id: &str, date: Date) -> Result<(), SimError> {
        self.lock().rehire(id, date)
    }

    /// Deletes: gone from listings, reported as Deleted by the changed feed. Panics on an
    /// unknown id; see [`Simulator::try_delete`].
    pub fn delete(&self, id: &str) {
        if let Err(e) = self.try_delete(id) {
            panic!("Simulator::delete: {e}");
        }
    }

    /// [`Simulator::delete`], reporting failures.
    pub fn try_delete(&self, id: &str) -> Result<(), SimError> {
        self.lock().delete(id)
    }

    /// Adds a training type; returns its id.
    pub fn add_training_type(&self, t: SimTrainingType) -> u64 {
        self.lock().training.add_type(t)
    }

    /// Records that employee `id` completed training type `type_id` on `completed`;
    /// returns the record's id. Fails for an unknown or deleted employee.
    pub fn complete_training(
        &self,
        id: &str,
        type_id: u64,
        completed: Date,
    ) -> Result<u64, SimError> {
        let mut s = self.lock();
        let key = s
            .live(id)
            .and_then(|e| e.employee_id.parse::<u64>().ok())
            .ok_or_else(|| SimError::UnknownEmployee { id: id.to_string() })?;
        Ok(s.training.add_record(key, type_id, completed))
    }

    /// Denies (or restores) the key's access to training: both training endpoints
    /// answer 403 while denied, as for a key whose owner may not see training.
    pub fn deny_training_access(&self, denied: bool) {
        self.lock().training.deny(denied);
    }

    /// BambooHR API requests received (faulted and refused ones included; control calls
    /// not).
    pub fn request_count(&self) -> u64 {
        self.lock().requests
    }

    /// Schedules a fault; see [`FaultPlan`].
    pub fn inject(&self, plan: FaultPlan) {
        self.lock().faults.inject(plan);
    }

    /// Starts keeping every BambooHR API exchange (request and answer) from now on,
    /// dropping any kept before.
    pub fn start_recording(&self) {
        self.lock().recording = Some(Vec::new());
    }

    /// The exchanges kept since [`Simulator::start_recording`], oldest first.
    pub fn recorded(&self) -> Vec<Exchange> {
        self.lock().recording.clone().unwrap_or_default()
    }

    /// Removes every scheduled fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Accepts `token` as an OAuth bearer token.
    pub fn add_bearer_token(&self, token: &str) {
        self.lock().bearer_tokens.insert(token.to_string());
    }

    /// Stops accepting `token` (a revoked or expired OAuth token).
    pub fn revoke_bearer_token(&self, token: &str) {
        self.lock().bearer_tokens.remove(token);
    }

    /// Registers an OAuth client and issues it a first access and refresh token, as the
    /// authorization-code flow would: `(access_token, refresh_token)`. The access token
    /// is accepted as a bearer token until expired; the refresh token works once
    /// (rotation) at `POST /token.php`.
    pub fn issue_oauth_tokens(&self, client_id: &str, client_secret: &str) -> (String, String) {
        let mut s = self.lock();
        s.oauth
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
        let access = oauth::new_token("sim-access");
        let refresh = oauth::new_token("sim-refresh");
        s.bearer_tokens.insert(access.clone());
        s.oauth
            .refresh_tokens
            .insert(refresh.clone(), client_id.to_string());
        (access, refresh)
    }

    /// Registers an OAuth client (its id and secret), as a BambooHR developer
    /// application: it may then send people to `GET /authorize.php` and exchange the
    /// codes it gets back at `POST /token.php`.
    pub fn register_oauth_client(&self, client_id: &str, client_secret: &str) {
        self.lock()
            .oauth
            .clients
            .insert(client_id.to_string(), client_secret.to_string());
    }

    /// Ages every authorization code issued so far past its lifetime: exchanging one
    /// is then `invalid_grant`.
    pub fn expire_authorization_codes(&self) {
        self.lock().oauth.expire_codes();
    }

    /// Expires an access token now: BambooHR answers 401 to it from here on.
    pub fn expire_access_token(&self, token: &str) {
        self.revoke_bearer_token(token);
    }

    /// Whether `token` is a live access token.
    pub fn access_token_is_live(&self, token: &str) -> bool {
        self.lock().bearer_tokens.contains(token)
    }

    /// Requests received by the token endpoint.
    pub fn token_request_count(&self) -> u64 {
        self.lock().oauth.token_requests
    }

    /// Sends a field-based webhook to `url`, signed with `key`, after every control-API
    /// mutation, retried on 5xx on BambooHR's real schedule.
    pub fn set_webhook_target(&self, url: &str, key: &[u8]) {
        self.set_webhook_target_with(
            url,
            key,
            WebhookPayload::FieldBased,
            RetrySchedule::default(),
        );
    }

    /// [`Simulator::set_webhook_target`] with the payload family and retry schedule.
    pub fn set_webhook_target_with(
        &self,
        url: &str,
        key: &[u8],
        payload: WebhookPayload,
        schedule: RetrySchedule,
    ) {
        self.lock().webhook = Some(WebhookTarget {
            url: url.to_string(),
            key: key.to_vec(),
            payload,
            schedule,
        });
    }

    /// Sends the webhook for employee `id`'s last change to the configured target and
    /// waits for the outcome, retries included. `None` without a target or for an unknown
    /// employee.
    pub async fn send_webhook_for(&self, id: &str) -> Option<DeliveryReport> {
        let target = self.webhook_target()?;
        let body = self.webhook_body_for(id, target.payload)?;
        let report = deliver_with_retries(&target.url, &body, &target.key, target.schedule).await;
        tracing::info!(
            employee_id = %id,
            attempts = report.statuses.len(),
            delivered = report.delivered,
            "webhook sent"
        );
        self.lock().webhook_reports.push(report.clone());
        Some(report)
    }

    /// Fires the webhooks registered through the webhooks API (`POST /api/v1/webhooks`)
    /// that employee `id`'s last change triggers, as BambooHR would: an `employee.*`
    /// registration gets the event-based payload; an `employee_with_fields.*` one gets
    /// the field-based payload with its `postFields` (keyed by their external names),
    /// for updates only when a monitored field changed. Each is signed with that
    /// webhook's private key and retried on `schedule`. Returns (webhook id, outcome).
    pub async fn fire_registered_webhooks(
        &self,
        id: &str,
        schedule: RetrySchedule,
    ) -> Vec<(String, DeliveryReport)> {
        let Some(key) = id.trim().parse::<u64>().ok() else {
            return Vec::new();
        };
        // What to send, decided under the lock; sent without it.
        let plan: Vec<Fire> = {
            let s = self.lock();
            let Some(change) = s.last_change.get(&key).cloned() else {
                return Vec::new();
            };
            let suffix = match change.action {
                Action::Created => "created",
                Action::Updated => "updated",
                Action::Deleted => "deleted",
            };
            let event = format!("employee.{suffix}");
            let with_fields = format!("employee_with_fields.{suffix}");
            let mut plan = Vec::new();
            for (wid, w) in &s.webhooks {
                let body = if w.events.contains(&event) {
                    None
                } else if w.events.contains(&with_fields) {
                    let monitored = w.monitor_fields.clone().unwrap_or_default();
                    let triggered = change.action != Action::Updated
                        || change
                            .fields
                            .iter()
                            .any(|f| monitored.iter().any(|m| Field::from_any_name(m) == *f));
                    if !triggered {
                        continue;
                    }
                    let posted: Vec<(String, String)> = w
                        .post_fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or(k).to_string()))
                        .collect();
                    Some(
                        s.field_based_body_posted(key, &posted)
                            .to_string()
                            .into_bytes(),
                    )
                } else {
                    continue;
                };
                plan.push(Fire {
                    webhook_id: *wid,
                    url: w.url.clone(),
                    private_key: w.private_key.clone().into_bytes(),
                    body,
                });
            }
            drop(s);
            plan.into_iter()
                .map(|mut f| {
                    if f.body.is_none() {
                        f.body = Some(self.event_webhook(&event, id, b"").body);
                    }
                    f
                })
                .collect()
        };
        let mut out = Vec::new();
        for fire in plan {
            let body = fire.body.unwrap_or_default();
            let report = deliver_with_retries(&fire.url, &body, &fire.private_key, schedule).await;
            let mut s = self.lock();
            if report.delivered {
                if let Some(w) = s.webhooks.get_mut(&fire.webhook_id) {
                    w.last_sent = Some(state::now());
                }
            }
            s.webhook_reports.push(report.clone());
            out.push((fire.webhook_id.to_string(), report));
        }
        out
    }

    /// Outcomes of the webhooks sent so far, oldest first.
    pub fn webhook_reports(&self) -> Vec<DeliveryReport> {
        self.lock().webhook_reports.clone()
    }

    /// The payload BambooHR would send for employee `id`'s last change.
    fn webhook_body_for(&self, id: &str, payload: WebhookPayload) -> Option<Vec<u8>> {
        let key: u64 = id.trim().parse().ok()?;
        let action = {
            let s = self.lock();
            s.employees.get(&key)?;
            s.last_change
                .get(&key)
                .map_or(Action::Updated, |c| c.action)
        };
        match payload {
            WebhookPayload::FieldBased => {
                let mut names: Vec<String> = Field::standard()
                    .filter(|f| *f != Field::EmployeeId)
                    .map(|f| f.display_name())
                    .collect();
                names.extend(
                    self.custom_fields()
                        .iter()
                        .map(|c| Field::Custom(c.clone()).display_name()),
                );
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(
                    self.field_based_body(&[id.to_string()], &refs)
                        .to_string()
                        .into_bytes(),
                )
            }
            WebhookPayload::EventBased => {
                let event = match action {
                    Action::Created => "employee.created",
                    Action::Updated => "employee.updated",
                    Action::Deleted => "employee.deleted",
                };
                // The body does not depend on the key; the signature is made per attempt.
                Some(self.event_webhook(event, id, b"").body)
            }
        }
    }

    /// The field-based webhook BambooHR would send for these employees, with `fields`
    /// (English display names such as "Work Email", or a custom field's label) as
    /// `fields`, signed with `key` at the current Unix time. Unknown ids and names are
    /// skipped. `changedFields` lists what the employee's last mutation changed.
    pub fn field_based_webhook(
        &self,
        ids: &[String],
        fields: &[&str],
        key: &[u8],
    ) -> SignedWebhook {
        let timestamp = OffsetDateTime::now_utc().unix_timestamp().to_string();
        let body = self.field_based_body(ids, fields);
        SignedWebhook::new(body.to_string().into_bytes(), key, &timestamp)
    }

    fn field_based_body(&self, ids: &[String], fields: &[&str]) -> Value {
        let s = self.lock();
        let requested: Vec<(&str, Field)> = fields
            .iter()
            .filter_map(|name| Some((*name, Field::from_display_name(name, &s.custom_fields)?)))
            .collect();
        let employees: Vec<Value> = ids
            .iter()
            .filter_map(|id| s.employees.get(&id.trim().parse::<u64>().ok()?))
            .map(|e| {
                let id: u64 = e.employee_id.parse().unwrap_or_default();
                let change = s.last_change.get(&id);
                let action = change.map_or(Action::Updated, |c| c.action);
                let manager = s.manager_of(e);
                let mut values = serde_json::Map::new();
                if action != Action::Deleted {
                    for (name, field) in &requested {
                        let v = e.value(field, manager);
                        values.insert(
                            name.to_string(),
                            v.map(Value::String).unwrap_or(Value::Null),
                        );
                    }
                }
                let changed: Vec<String> = match action {
                    Action::Created => requested.iter().map(|(n, _)| n.to_string()).collect(),
                    Action::Updated => change
                        .map(|c| c.fields.iter().map(Field::display_name).collect())
                        .unwrap_or_default(),
                    Action::Deleted => Vec::new(),
                };
                json!({
                    "id": e.employee_id,
                    "action": action.as_str(),
                    "timestamp": format_timestamp(e.last_changed),
                    "changedFields": changed,
                    "fields": values,
                })
            })
            .collect();
        json!({ "employees": employees })
    }

    /// The event-based webhook (`employee.created|updated|deleted`) for one employee:
    /// ids only, `changedFields` as API names for updates; signed with `key`.
    pub fn event_webhook(&self, event: &str, id: &str, key: &[u8]) -> SignedWebhook {
        let now = OffsetDateTime::now_utc();
        let changed: Vec<String> = if event == "employee.updated" {
            let s = self.lock();
            id.trim()
                .parse::<u64>()
                .ok()
                .and_then(|k| s.last_change.get(&k))
                .map(|c| c.fields.iter().map(Field::key).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut data = json!({ "companyId": "1", "employeeId": id });
        if event == "employee.updated" {
            data["changedFields"] = json!(changed);
        }
        let body = json!({
            "type": event,
            "timestamp": format_timestamp(now.replace_nanosecond(0).unwrap_or(now)),
            "data": data,
        });
        SignedWebhook::new(
            body.to_string().into_bytes(),
            key,
            &now.unix_timestamp().to_string(),
        )
    }

    /// Where mutations are pushed, if anywhere.
    fn webhook_target(&self) -> Option<WebhookTarget> {
        self.lock().webhook.clone()
    }
}
