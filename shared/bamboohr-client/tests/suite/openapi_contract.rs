//! The contract with BambooHR's official OpenAPI: every request the client makes matches
//! an operation of the spec (method, path template, declared parameters, deepObject
//! properties, request body properties), and every answer the simulator gives to those
//! requests is a status the operation declares with a body that validates against its
//! schema (`$ref`s resolved, JSON Schema 2020-12 as OpenAPI 3.1 uses).
//!
//! Requests are recorded by the simulator itself ([`Simulator::start_recording`]), so
//! the check sees what went over the wire, not what the client meant to send.
//!
//! The spec lives beside the checkout (`../shared/reference/bamboohr/openapi.yaml`). It
//! is absent from some local checkouts: the test then skips, except under `CI=true`,
//! where a missing spec fails it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bamboohr_client::{Auth, BambooClient, BambooError, ClientOptions, NewWebhook, SecretString};
use bamboohr_simulator::{Exchange, Fault, FaultPlan, SimConfig, Simulator};
use serde_json::{json, Value};

const KEY: &str = "contract-key";

fn spec_path() -> PathBuf {
    // The crate sits at <workspace>/shared/bamboohr-client; the reference material sits
    // beside the workspace, at <workspace>/../shared/reference.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/bamboohr/openapi.yaml")
}

/// The spec as JSON, or `None` to skip (local run without the reference material).
fn load_spec() -> Option<Value> {
    let path = spec_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
            assert!(
                !ci,
                "the OpenAPI contract test needs BambooHR's spec at {} (CI=true): {e}",
                path.display()
            );
            eprintln!("skipped: no OpenAPI spec at {} ({e})", path.display());
            return None;
        }
    };
    let spec: Value = serde_norway::from_str(&text).expect("the OpenAPI spec is valid YAML");
    Some(spec)
}

/// The spec's operations, indexed for matching concrete requests.
struct Contract {
    spec: Value,
    /// Compiled response validators by (path template, method, status).
    validators: BTreeMap<(String, String, String), jsonschema::Validator>,
}

/// The operation a concrete request matched.
struct Matched<'a> {
    template: String,
    method: String,
    operation: &'a Value,
}

impl Contract {
    fn new(spec: Value) -> Self {
        Self {
            spec,
            validators: BTreeMap::new(),
        }
    }

    /// Follows `$ref`s (local JSON pointers) until a non-reference value.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(pointer) = v.get("$ref").and_then(Value::as_str) else {
                return v;
            };
            let pointer = pointer.strip_prefix('#').expect("only local $refs");
            v = self
                .spec
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {pointer}"));
        }
        panic!("$ref chain too deep")
    }

    /// The operation whose path template and method match, preferring literal segments
    /// over parameters (`/employees/changed` over `/employees/{id}`).
    fn operation(&self, method: &str, path: &str) -> Option<Matched<'_>> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut best: Option<(usize, Matched<'_>)> = None;
        for (template, item) in self.spec["paths"].as_object()? {
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(t, s)| {
                if t.starts_with('{') && t.ends_with('}') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            let Some(operation) = item.get(method.to_ascii_lowercase()) else {
                continue;
            };
            if fits && best.as_ref().is_none_or(|(l, _)| literal > *l) {
                best = Some((
                    literal,
                    Matched {
                        template: template.clone(),
                        method: method.to_string(),
                        operation,
                    },
                ));
            }
        }
        best.map(|(_, m)| m)
    }

    /// The declared parameters of an operation (path-item level ones included).
    fn parameters(&self, m: &Matched<'_>) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        let item = &self.spec["paths"][&m.template];
        for list in [item.get("parameters"), m.operation.get("parameters")]
            .into_iter()
            .flatten()
        {
            for p in list.as_array().into_iter().flatten() {
                out.push(self.resolve(p).clone());
            }
        }
        out
    }

    /// Whether `name` is a property of an object schema (following `$ref` and `allOf`).
    fn has_property(&self, schema: &Value, name: &str) -> bool {
        let schema = self.resolve(schema);
        if schema.get("properties").and_then(|p| p.get(name)).is_some() {
            return true;
        }
        ["allOf", "oneOf", "anyOf"].iter().any(|k| {
            schema
                .get(*k)
                .and_then(Value::as_array)
                .is_some_and(|parts| parts.iter().any(|s| self.has_property(s, name)))
        })
    }

    /// A validator for `schema`, with the spec's components beside it so that
    /// `#/components/...` references resolve.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        if let Value::Object(map) = &mut root {
            map.insert("components".into(), self.spec["components"].clone());
        }
        jsonschema::draft202012::new(&root).expect("the spec's schema compiles")
    }

    /// Every way `exchange` departs from the spec, as readable lines.
    fn check(&mut self, exchange: &Exchange) -> Vec<String> {
        let mut problems = Vec::new();
        let what = format!("{} {}", exchange.method, exchange.path);
        let Some(m) = self.operation(&exchange.method, &exchange.path) else {
            return vec![format!("{what}: no operation of the spec matches")];
        };
        let (template, method) = (m.template.clone(), m.method.clone());
        let params = self.parameters(&m);
        let operation = m.operation.clone();

        // Query parameters: each name is declared; bracketed names belong to a deepObject
        // parameter whose schema has that property.
        for (name, value) in &exchange.query {
            let (base, property) = match name.split_once('[') {
                Some((base, rest)) => (
                    base,
                    Some(rest.trim_end_matches("[]").trim_end_matches(']')),
                ),
                None => (name.as_str(), None),
            };
            let declared = params
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == base);
            let Some(declared) = declared else {
                problems.push(format!("{what}: query parameter `{name}` is not declared"));
                continue;
            };
            if let Some(property) = property {
                if declared.get("style").and_then(Value::as_str) != Some("deepObject") {
                    problems.push(format!("{what}: `{base}` is not a deepObject parameter"));
                } else if !self.has_property(&declared["schema"], property) {
                    problems.push(format!("{what}: `{base}` has no property `{property}`"));
                } else if base == "filter"
                    && property == "ids"
                    && !value.bytes().all(|b| b.is_ascii_digit())
                {
                    problems.push(format!("{what}: `{name}` must be an integer"));
                }
            }
        }
        for p in &params {
            let name = p["name"].as_str().unwrap_or_default();
            if p["in"] == "query"
                && p["required"] == true
                && !exchange.query.iter().any(|(k, _)| k == name)
            {
                problems.push(format!("{what}: required query parameter `{name}` missing"));
            }
        }

        // Request body: declared, its properties declared, and valid.
        let body_schema = operation
            .get("requestBody")
            .map(|b| self.resolve(b).clone())
            .and_then(|b| b.pointer("/content/application~1json/schema").cloned());
        match (&exchange.request_body, body_schema) {
            (Some(body), Some(schema)) => {
                if let Some(fields) = body.as_object() {
                    for key in fields.keys() {
                        if !self.has_property(&schema, key) {
                            problems.push(format!("{what}: body property `{key}` not declared"));
                        }
                    }
                }
                let v = self.validator(&schema);
                for e in v.iter_errors(body) {
                    problems.push(format!(
                        "{what}: request body: {} at {}",
                        e,
                        e.instance_path()
                    ));
                }
            }
            (Some(_), None) => problems.push(format!("{what}: the operation takes no JSON body")),
            (None, _) => {}
        }

        // Response: a declared status, and a body valid against its schema.
        let status = exchange.status.to_string();
        let responses = &operation["responses"];
        let Some(response) = responses.get(&status).or_else(|| responses.get("default")) else {
            problems.push(format!(
                "{what}: status {status} is not declared for {method} {template}"
            ));
            return problems;
        };
        let response = self.resolve(response).clone();
        if let Some(schema) = response.pointer("/content/application~1json/schema") {
            let Some(body) = &exchange.response_body else {
                problems.push(format!("{what}: {status} answered without a JSON body"));
                return problems;
            };
            let key = (template.clone(), method.clone(), status.clone());
            if !self.validators.contains_key(&key) {
                let v = self.validator(schema);
                self.validators.insert(key.clone(), v);
            }
            for e in self.validators[&key].iter_errors(body) {
                problems.push(format!(
                    "{what}: {status} body: {} at `{}`",
                    e,
                    e.instance_path()
                ));
            }
        }
        problems
    }
}

fn fast() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 1,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        budget: Duration::from_secs(10),
        max_concurrency: 2,
        ..ClientOptions::default()
    }
}

/// Checks every recorded exchange and fails with the full list of departures.
/// `answers_only` are exchanges whose requests were made by hand (deliberately invalid):
/// only their answers are held to the spec.
fn assert_contract(
    spec: Value,
    exchanges: &[Exchange],
    answers_only: &[Exchange],
    expect_statuses: &[u16],
) {
    let mut contract = Contract::new(spec);
    let mut problems = Vec::new();
    for e in exchanges {
        problems.extend(contract.check(e));
    }
    for e in answers_only {
        let answer = Exchange {
            query: Vec::new(),
            request_body: None,
            ..e.clone()
        };
        problems.extend(contract.check(&answer));
    }
    for status in expect_statuses {
        assert!(
            exchanges
                .iter()
                .chain(answers_only)
                .any(|e| e.status == *status),
            "no exchange answered {status}: the test no longer covers it"
        );
    }
    assert!(
        problems.is_empty(),
        "{} departure(s) from BambooHR's OpenAPI in {} exchanges:\n{}",
        problems.len(),
        exchanges.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn every_request_the_client_makes_and_every_answer_the_simulator_gives_follows_the_spec() {
    let Some(spec) = load_spec() else { return };
    let sim = Simulator::generate(SimConfig {
        api_key: KEY.into(),
        seed: 5,
        employees: 23,
        restricted_fields: vec!["homeEmail".into(), "workEmail".into()],
        ..SimConfig::default()
    });
    let server = sim.serve().await.unwrap();
    let client = BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from(KEY)),
        fast(),
    )
    .unwrap();
    sim.start_recording();

    // Datasets v2: two pages, restricted fields among those asked for.
    let fields = ["firstName", "lastName", "email", "jobInformationDepartment"];
    let first = client.dataset_page(&fields, 1, 15).await.unwrap();
    assert_eq!(first.total_pages, 2);
    client.dataset_page(&fields, 2, 15).await.unwrap();
    client
        .dataset_page_filtered(&["firstName"], "status eq 'Active'", 1, 50)
        .await
        .unwrap();

    // List employees: several cursor pages, restricted fields, then filter[ids].
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_employees_page(&["workEmail", "department"], after.as_deref(), 10)
            .await
            .unwrap();
        pages += 1;
        match page.next_cursor {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(pages >= 3, "several pages: {pages}");
    let ids: Vec<String> = sim
        .employees()
        .into_iter()
        .take(4)
        .map(|e| e.employee_id)
        .collect();
    client.employees_by_ids(&ids, &["workEmail"]).await.unwrap();

    // Changed ids and one employee.
    client
        .changed_since(time::OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    client
        .get_employee(&ids[0], &["firstName", "jobTitle", "workEmail"])
        .await
        .unwrap();
    assert!(matches!(
        client.get_employee("999999", &["firstName"]).await,
        Err(BambooError::NotFound { .. })
    ));

    // Account metadata, the directory, and the webhooks API.
    let fields_list = client.meta_fields().await.unwrap();
    assert!(fields_list.iter().any(|f| f.field_type == "checkbox"));
    let lists = client.list_fields().await.unwrap();
    assert!(lists
        .iter()
        .any(|l| l.alias.as_deref() == Some("department")));
    assert!(!client.directory().await.unwrap().is_empty());
    let created = client
        .create_webhook(&NewWebhook {
            name: "sync".into(),
            url: "https://hooks.example.com/bamboohr".into(),
            events: vec![],
            monitor_fields: vec!["firstName".into(), "workEmail".into()],
            post_fields: vec![("firstName".into(), "First Name".into())],
        })
        .await
        .unwrap();
    let event_based = client
        .create_webhook(&NewWebhook {
            name: "events".into(),
            url: "https://hooks.example.com/events".into(),
            events: vec!["employee.created".into(), "employee.deleted".into()],
            monitor_fields: vec![],
            post_fields: vec![],
        })
        .await
        .unwrap();
    assert_eq!(client.list_webhooks().await.unwrap().len(), 2);
    client.delete_webhook(&event_based.id).await.unwrap();
    assert!(matches!(
        client.delete_webhook(&event_based.id).await,
        Err(BambooError::NotFound { .. })
    ));
    assert!(matches!(
        client
            .create_webhook(&NewWebhook {
                name: "plain http".into(),
                url: "http://hooks.example.com/".into(),
                events: vec![],
                monitor_fields: vec!["firstName".into()],
                post_fields: vec![],
            })
            .await,
        Err(BambooError::InvalidRequest {
            status: Some(400),
            ..
        })
    ));
    assert_eq!(client.list_webhooks().await.unwrap()[0].id, created.id);

    // Training (the onboarding evidence): the types keyed by id, an employee's
    // records keyed by id, `[]` for one with none, and 403 for a key without access.
    let induction = sim.add_training_type(bamboohr_simulator::SimTrainingType {
        name: "Induction".into(),
        required: true,
        due_from_hire_days: Some(30),
        ..Default::default()
    });
    sim.add_training_type(bamboohr_simulator::SimTrainingType {
        name: "Fire safety".into(),
        renewable: true,
        frequency_months: Some(12),
        ..Default::default()
    });
    let trained = sim.employees()[0].employee_id.clone();
    let untrained = sim.employees()[1].employee_id.clone();
    sim.complete_training(&trained, induction, time::macros::date!(2026 - 01 - 10))
        .unwrap();
    let types = client.training_types().await.unwrap();
    assert_eq!(types.len(), 2);
    assert!(types[0].required && types[0].due_from_hire_days == Some(30));
    assert!(types[1].renewable && types[1].due_from_hire_days.is_none());
    let records = client.employee_training_records(&trained).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].type_id, types[0].id);
    assert_eq!(records[0].employee_id, trained);
    assert_eq!(
        records[0].completed,
        Some(time::macros::date!(2026 - 01 - 10))
    );
    assert!(client
        .employee_training_records(&untrained)
        .await
        .unwrap()
        .is_empty());
    sim.deny_training_access(true);
    assert!(matches!(
        client.training_types().await,
        Err(BambooError::Forbidden { .. })
    ));
    assert!(matches!(
        client.employee_training_records(&trained).await,
        Err(BambooError::Forbidden { .. })
    ));
    sim.deny_training_access(false);

    // Error shapes: a malformed cursor (400 BadPage), an unknown dataset field (400
    // problem details), an impossible page size sent raw (422 problem details),
    // throttling (429), a wrong key (401).
    assert!(matches!(
        client
            .list_employees_page(&[], Some("not-a-cursor"), 10)
            .await,
        Err(BambooError::InvalidRequest {
            status: Some(400),
            ..
        })
    ));
    assert!(matches!(
        client.dataset_page(&["noSuchField"], 1, 10).await,
        Err(BambooError::InvalidRequest {
            status: Some(400),
            ..
        })
    ));
    // Requests sent by hand are not the client's: only their answers are checked.
    let client_exchanges = sim.recorded();
    sim.start_recording();
    let raw = reqwest::Client::new()
        .post(format!("{}/api/v2/datasets/employee/data", server.base_url))
        .basic_auth(KEY, Some("x"))
        .json(&json!({"fields": ["firstName"], "page": 1, "pageSize": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 422);
    let raw_exchanges = sim.recorded();
    sim.start_recording();
    sim.inject(FaultPlan::next(Fault::rate_limited(1)));
    assert!(matches!(
        client.list_employees_page(&[], None, 5).await,
        Err(BambooError::RateLimited { .. })
    ));
    let wrong = BambooClient::new(
        &server.base_url,
        Auth::ApiKey(SecretString::from("wrong-key")),
        fast(),
    )
    .unwrap();
    assert!(matches!(
        wrong.list_employees_page(&[], None, 5).await,
        Err(BambooError::Unauthorized)
    ));

    let mut exchanges = client_exchanges;
    exchanges.extend(sim.recorded());
    assert_contract(
        spec,
        &exchanges,
        &raw_exchanges,
        &[200, 201, 400, 401, 403, 404, 422, 429],
    );
}

#[test]
fn the_contract_check_catches_an_undeclared_parameter_and_a_body_that_breaks_its_schema() {
    let Some(spec) = load_spec() else { return };
    let mut contract = Contract::new(spec);
    let exchange = Exchange {
        method: "GET".into(),
        path: "/api/v1/employees".into(),
        query: vec![
            ("page[size]".into(), "10".into()),
            ("bogus".into(), "1".into()),
        ],
        request_body: None,
        status: 200,
        content_type: Some("application/json".into()),
        response_body: Some(json!({"data": "not a list"})),
    };
    let problems = contract.check(&exchange).join("\n");
    assert!(
        problems.contains("`page` has no property `size`"),
        "{problems}"
    );
    assert!(problems.contains("`bogus` is not declared"), "{problems}");
    assert!(problems.contains("200 body"), "{problems}");

    let unknown = Exchange {
        method: "DELETE".into(),
        path: "/api/v1/employees/changed".into(),
        query: vec![],
        request_body: None,
        status: 200,
        content_type: None,
        response_body: None,
    };
    assert!(contract.check(&unknown)[0].contains("no operation"));
}
