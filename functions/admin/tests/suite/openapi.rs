//! Every admin API route, read and write, answered by the handler over the embedded
//! adapters after a real connect, sync and delivery (BambooHR simulator, a local
//! receiving app), and every response, success or error, validated against
//! `openapi.yaml` by the OpenAPI validators (openapi-spec-validator,
//! openapi-schema-validator).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use serde_json::{json, Value};

use bamboohr_simulator::LITMOS_ACCESS;
use base64::Engine as _;

use crate::common::{call, full_run, harness, request, API_KEY, CALLER, WEBHOOK_BASE_URL, WHSEC};

/// A call: method, the concrete path, its OpenAPI path template, the query, the body,
/// the status wanted.
struct Call<'a> {
    method: &'a str,
    path: String,
    template: &'a str,
    query: Vec<(&'a str, &'a str)>,
    body: Option<Value>,
    want: u16,
}

fn get<'a>(path: String, template: &'a str, query: Vec<(&'a str, &'a str)>, want: u16) -> Call<'a> {
    Call {
        method: "GET",
        path,
        template,
        query,
        body: None,
        want,
    }
}

fn post<'a>(path: String, template: &'a str, body: Option<Value>, want: u16) -> Call<'a> {
    Call {
        method: "POST",
        path,
        template,
        query: vec![],
        body,
        want,
    }
}

/// Runs the validator script over `cases`; fails the test on its first finding.
fn validate(cases: &[Value]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"));
    let mut validator = std::process::Command::new(test_peers::python())
        .arg(format!("{dir}/tests/suite/validate_openapi.py"))
        .arg(format!("{dir}/openapi.yaml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the validator starts");
    validator
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(cases.to_vec()).to_string().as_bytes())
        .unwrap();
    let out = validator.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), format!("validated {}", cases.len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_what_the_openapi_document_describes() {
    let h = harness().await;
    let users = h.api.engine.store.list_users(&h.id).await.unwrap();
    let employee = users[0].employee_id.to_string();
    // An event the bus refused for good, so the quarantine listing has an item.
    let refused =
        domain::ChangeEvent::for_user_write(None, &users[0], time::OffsetDateTime::now_utc());
    h.api
        .engine
        .store
        .quarantine_events(
            &h.id,
            &[ports::QuarantinedEvent {
                event: refused.clone(),
                reason: "MessageTooLong: the notice is 300000 bytes".into(),
                quarantined_at: time::OffsetDateTime::now_utc(),
            }],
        )
        .await
        .unwrap();
    let key_id = |k: &str| ports::key_id(&secrecy::SecretString::from(k.to_string()));
    let hand_made = "hand-made-webhook-private-key-0123456789abcdef";
    let new_secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let old_secret = WHSEC.to_string();
    let bus = |id: &str| format!("arn:aws:events:us-east-1:123456789012:event-bus/{id}");
    let sim = h.sim_url.clone();

    let base = "/admin/directories";
    let d = "/admin/directories/{directoryId}";
    let t = |suffix: &str| -> &'static str {
        Box::leak(format!("/admin/directories/{{directoryId}}{suffix}").into_boxed_str())
    };
    let redrive = "/admin/dead-letters/redrive";
    let secrets = t("/targets/{targetId}/secrets");
    let retire_secret = t("/targets/{targetId}/secrets/{keyId}/retire");
    // A setup link made beforehand, to list and revoke.
    let made = sync_engine::operate::create_setup_link(
        &h.api.engine,
        &h.id,
        sync_engine::operate::NewSetupLink::default(),
        CALLER,
    )
    .await
    .unwrap();
    let made_token = secrecy::ExposeSecret::expose_secret(&made.token).to_string();
    let configuration: Vec<Call> = vec![
        // Connect (registering the webhook at the stack's URL), re-authenticate, refuse.
        post(
            base.into(),
            base,
            Some(
                json!({"id": "beta", "subdomain": "acme", "baseUrl": sim, "apiKey": API_KEY,
                        "timeZone": "Europe/Berlin", "registerWebhook": true}),
            ),
            201,
        ),
        post(
            base.into(),
            base,
            Some(json!({"id": "beta", "subdomain": "acme", "baseUrl": sim, "apiKey": API_KEY})),
            200,
        ),
        post(
            base.into(),
            base,
            Some(json!({"id": "gamma", "subdomain": "acme", "baseUrl": sim, "apiKey": "wrong"})),
            400,
        ),
        post(
            base.into(),
            base,
            Some(
                json!({"id": "gamma", "subdomain": "acme", "apiKey": API_KEY,
                        "oauth": {"accessToken": "t"}}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/credentials"),
            t("/credentials"),
            Some(json!({"apiKey": API_KEY})),
            200,
        ),
        post(
            format!("{base}/acme/credentials"),
            t("/credentials"),
            Some(json!({})),
            400,
        ),
        post(
            format!("{base}/nope/credentials"),
            t("/credentials"),
            Some(json!({"apiKey": API_KEY})),
            404,
        ),
        // Settings: the gate checkbox as a custom attribute, department groups.
        post(
            format!("{base}/acme/settings"),
            t("/settings"),
            Some(json!({"customFieldMap": {LITMOS_ACCESS: "litmosAccess"},
                        "groupSources": ["department"], "incrementalEveryMinutes": 15,
                        "fieldAliases": {"Litmos Access": LITMOS_ACCESS},
                        "missingUsers": "deactivate", "preStartDays": 3,
                        "rawAttributeAllowlist": [LITMOS_ACCESS, "Employment Status"]})),
            200,
        ),
        post(
            format!("{base}/acme/settings"),
            t("/settings"),
            Some(json!({"rawAttributeAllowlist": ["No Such Field"]})),
            400,
        ),
        post(
            format!("{base}/acme/settings"),
            t("/settings"),
            Some(json!({"preset": "daily_evidence", "incrementalEveryMinutes": 15})),
            200,
        ),
        post(
            format!("{base}/acme/settings"),
            t("/settings"),
            Some(json!({"preset": "hourly_vibes"})),
            400,
        ),
        post(
            format!("{base}/acme/settings"),
            t("/settings"),
            Some(json!({"timeZone": "Mars/Olympus_Mons"})),
            400,
        ),
        post(
            format!("{base}/nope/settings"),
            t("/settings"),
            Some(json!({})),
            404,
        ),
        // Setup links: create (for a directory not connected yet too), list, revoke.
        post(
            format!("{base}/acme/setup-links"),
            t("/setup-links"),
            Some(json!({"expiresInDays": 3})),
            201,
        ),
        post(
            format!("{base}/newco/setup-links"),
            t("/setup-links"),
            None,
            201,
        ),
        post(
            format!("{base}/acme/setup-links"),
            t("/setup-links"),
            Some(json!({"expiresInDays": 31})),
            400,
        ),
        get(
            format!("{base}/acme/setup-links"),
            t("/setup-links"),
            vec![],
            200,
        ),
        post(
            format!("{base}/acme/setup-links/{}/revoke", made.link.id),
            t("/setup-links/{linkId}/revoke"),
            None,
            200,
        ),
        post(
            format!("{base}/acme/setup-links/sl0000000000000000/revoke"),
            t("/setup-links/{linkId}/revoke"),
            None,
            404,
        ),
        // The stack's BambooHR OAuth client: set, refused, read, its audit, removed.
        get(
            "/admin/oauth-client".into(),
            "/admin/oauth-client",
            vec![],
            200,
        ),
        post(
            "/admin/oauth-client".into(),
            "/admin/oauth-client",
            Some(json!({"clientId": "stack-app", "clientSecret": "oauth-client-secret-value"})),
            200,
        ),
        post(
            "/admin/oauth-client".into(),
            "/admin/oauth-client",
            Some(json!({"clientId": "stack app", "clientSecret": "oauth-client-secret-value"})),
            400,
        ),
        post(
            "/admin/oauth-client".into(),
            "/admin/oauth-client",
            Some(json!({"clientId": "stack-app"})),
            400,
        ),
        get(
            "/admin/oauth-client".into(),
            "/admin/oauth-client",
            vec![],
            200,
        ),
        get(format!("{base}/_stack/audit"), t("/audit"), vec![], 200),
        post(
            "/admin/oauth-client/remove".into(),
            "/admin/oauth-client/remove",
            None,
            200,
        ),
        // The BambooHR webhook and its keys.
        post(format!("{base}/acme/webhook"), t("/webhook"), None, 200),
        post(
            format!("{base}/acme/webhook"),
            t("/webhook"),
            Some(json!({"url": "ftp://hooks.example.test/"})),
            400,
        ),
        post(format!("{base}/nope/webhook"), t("/webhook"), None, 404),
        post(
            format!("{base}/acme/webhook-keys"),
            t("/webhook-keys"),
            Some(json!({"key": hand_made})),
            201,
        ),
        post(
            format!("{base}/acme/webhook-keys"),
            t("/webhook-keys"),
            Some(json!({"key": "short"})),
            400,
        ),
        post(
            format!("{base}/nope/webhook-keys"),
            t("/webhook-keys"),
            Some(json!({"key": hand_made})),
            404,
        ),
        get(
            format!("{base}/acme/webhook-keys"),
            t("/webhook-keys"),
            vec![],
            200,
        ),
        get(
            format!("{base}/nope/webhook-keys"),
            t("/webhook-keys"),
            vec![],
            404,
        ),
        post(
            format!("{base}/acme/webhook-keys/{}/retire", key_id(hand_made)),
            t("/webhook-keys/{keyId}/retire"),
            None,
            200,
        ),
        post(
            format!("{base}/acme/webhook-keys/{}/retire", key_id(hand_made)),
            t("/webhook-keys/{keyId}/retire"),
            None,
            400,
        ),
        // Targets of every kind.
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "scim", "kind": "scim", "baseUrl": "https://scim.example.test/v2",
                        "scim": {"userName": "full_email", "deprovision": "delete",
                                 "pendingActive": true, "pushGroups": true,
                                 "nameSource": "preferred",
                                 "matchOrder": ["external_id", "work_email"],
                                 "adoptInactiveAccounts": false,
                                 "ownedAttributes": ["name", "title", "active",
                                     "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"],
                                 "countryCodes": {"UK": "GB"},
                                 "reconcileEveryHours": 12},
                        "filter": {"states": ["active"], "requireWorkEmail": true},
                        "secret": "scim-bearer-token"}),
            ),
            201,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(json!({"id": "lms", "kind": "http_upsert",
                        "url": "https://lms.example.test/api/users",
                        "fields": ["username", "firstName"], "required": ["firstName"],
                        "filter": {"fieldIn": {"litmosAccess": ["Yes"]}},
                        "secretParam": "apikey", "secret": "lms-api-key"})),
            201,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "bus", "kind": "event_bridge", "busArn": bus("customer"),
                        "projection": ["firstName", "emails", "rawAttributes.Status"]}),
            ),
            201,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "wos", "kind": "app_webhook", "url": "https://wos.example.test/hooks",
                        "format": "workos", "projection": ["firstName", "emails"],
                        "secret": WHSEC}),
            ),
            201,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "wos2", "kind": "app_webhook", "url": "https://wos.example.test/hooks",
                        "projection": ["payRate"], "secret": WHSEC}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "app", "kind": "app_webhook", "url": "https://x.example.test/",
                        "secret": WHSEC}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "scim2", "kind": "scim", "baseUrl": "https://scim.example.test/v2",
                        "scim": {"pushGroup": true}, "secret": "t"}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "gate", "kind": "http_upsert", "url": "https://lms.example.test/",
                        "filter": {"fieldIn": {"noSuchAttribute": ["Yes"]}}}),
            ),
            400,
        ),
        post(
            format!("{base}/nope/targets"),
            t("/targets"),
            Some(json!({"id": "bus", "kind": "event_bridge", "busArn": bus("customer")})),
            404,
        ),
        get(format!("{base}/acme/targets"), t("/targets"), vec![], 200),
        get(format!("{base}/nope/targets"), t("/targets"), vec![], 404),
        get(
            format!("{base}/acme/targets/scim"),
            t("/targets/{targetId}"),
            vec![],
            200,
        ),
        get(
            format!("{base}/acme/targets/nope"),
            t("/targets/{targetId}"),
            vec![],
            404,
        ),
        post(
            format!("{base}/acme/targets/lms"),
            t("/targets/{targetId}"),
            Some(
                json!({"kind": "http_upsert", "url": "https://lms2.example.test/api/users",
                        "gateExit": "leave",
                        "filter": {"fieldIn": {"litmosAccess": ["Yes"]}}}),
            ),
            200,
        ),
        post(
            format!("{base}/acme/targets/lms"),
            t("/targets/{targetId}"),
            Some(
                json!({"kind": "http_upsert", "url": "https://lms2.example.test/api/users",
                        "gateExit": "archive"}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/targets/lms"),
            t("/targets/{targetId}"),
            Some(json!({"id": "other", "kind": "http_upsert", "url": "https://lms.example.test/"})),
            400,
        ),
        post(
            format!("{base}/acme/targets/nope"),
            t("/targets/{targetId}"),
            Some(json!({"kind": "event_bridge", "busArn": bus("customer")})),
            404,
        ),
        post(
            format!("{base}/acme/targets/app/test"),
            t("/targets/{targetId}/test"),
            None,
            200,
        ),
        post(
            format!("{base}/acme/targets/bus/test"),
            t("/targets/{targetId}/test"),
            None,
            400,
        ),
        post(
            format!("{base}/acme/targets/nope/test"),
            t("/targets/{targetId}/test"),
            None,
            404,
        ),
        // A SCIM target's reconciliation, asked for; refused for other kinds.
        post(
            format!("{base}/acme/targets/scim/reconcile"),
            t("/targets/{targetId}/reconcile"),
            None,
            202,
        ),
        post(
            format!("{base}/acme/targets/app/reconcile"),
            t("/targets/{targetId}/reconcile"),
            None,
            400,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "scim3", "kind": "scim", "baseUrl": "https://scim.example.test/v2",
                        "scim": {"ownedAttributes": ["userName"]}, "secret": "t"}),
            ),
            400,
        ),
        post(
            format!("{base}/acme/targets"),
            t("/targets"),
            Some(
                json!({"id": "scim3", "kind": "scim", "baseUrl": "https://scim.example.test/v2",
                        "scim": {"countryCodes": {"United States": "USA"}}, "secret": "t"}),
            ),
            400,
        ),
        // An app webhook's signing secrets: add the successor, retire the old one.
        get(
            format!("{base}/acme/targets/app/secrets"),
            secrets,
            vec![],
            200,
        ),
        get(
            format!("{base}/acme/targets/scim/secrets"),
            secrets,
            vec![],
            400,
        ),
        get(
            format!("{base}/acme/targets/nope/secrets"),
            secrets,
            vec![],
            404,
        ),
        post(
            format!("{base}/acme/targets/app/secrets"),
            secrets,
            Some(json!({"secret": new_secret})),
            201,
        ),
        post(
            format!("{base}/acme/targets/app/secrets"),
            secrets,
            Some(json!({"secret": "not base64!"})),
            400,
        ),
        post(
            format!("{base}/acme/targets/nope/secrets"),
            secrets,
            Some(json!({"secret": new_secret})),
            404,
        ),
        post(
            format!(
                "{base}/acme/targets/app/secrets/{}/retire",
                key_id(&old_secret)
            ),
            retire_secret,
            None,
            200,
        ),
        post(
            format!(
                "{base}/acme/targets/app/secrets/{}/retire",
                key_id(&new_secret)
            ),
            retire_secret,
            None,
            400,
        ),
        post(
            format!(
                "{base}/acme/targets/nope/secrets/{}/retire",
                key_id(&new_secret)
            ),
            retire_secret,
            None,
            404,
        ),
        post(
            format!("{base}/acme/targets/bus/remove"),
            t("/targets/{targetId}/remove"),
            None,
            200,
        ),
        post(
            format!("{base}/acme/targets/bus/remove"),
            t("/targets/{targetId}/remove"),
            None,
            404,
        ),
        // Revoke (a body is refused); a revoked directory takes no webhook or key.
        post(
            format!("{base}/beta/revoke"),
            t("/revoke"),
            Some(json!({"reason": "x"})),
            400,
        ),
        post(format!("{base}/beta/revoke"), t("/revoke"), None, 200),
        post(format!("{base}/nope/revoke"), t("/revoke"), None, 404),
        post(format!("{base}/beta/webhook"), t("/webhook"), None, 409),
        post(
            format!("{base}/beta/webhook-keys"),
            t("/webhook-keys"),
            Some(json!({"key": hand_made})),
            409,
        ),
    ];
    let operations: Vec<Call> = vec![
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "app"})),
            200,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "app", "employeeId": employee})),
            200,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"target": "nope"})),
            404,
        ),
        post(
            format!("{base}/acme/replay"),
            t("/replay"),
            Some(json!({"employeeId": employee})),
            400,
        ),
        post(
            format!("{base}/acme/sync"),
            t("/sync"),
            Some(json!({"mode": "full"})),
            202,
        ),
        post(
            format!("{base}/acme/sync"),
            t("/sync"),
            Some(json!({"mode": "hourly"})),
            400,
        ),
        post(format!("{base}/nope/sync"), t("/sync"), None, 404),
        post(format!("{base}/acme/pause"), t("/pause"), None, 200),
        post(format!("{base}/acme/sync"), t("/sync"), None, 409),
        post(format!("{base}/acme/resume"), t("/resume"), None, 200),
        post(
            format!("{base}/acme/hold/release"),
            t("/hold/release"),
            None,
            409,
        ),
        post(
            format!("{base}/acme/hold/discard"),
            t("/hold/discard"),
            None,
            409,
        ),
        post(redrive.into(), redrive, Some(json!({"max": 10})), 200),
        post(redrive.into(), redrive, Some(json!({"max": 0})), 400),
        // Reads.
        get(base.into(), base, vec![], 200),
        get(base.into(), base, vec![("limit", "1")], 200),
        get(base.into(), base, vec![("cursor", "bm9wZQ")], 400),
        get(format!("{base}/acme"), d, vec![], 200),
        get(format!("{base}/nope"), d, vec![], 404),
        get(format!("{base}/acme/status"), t("/status"), vec![], 200),
        get(format!("{base}/nope/status"), t("/status"), vec![], 404),
        get(format!("{base}/acme/users"), t("/users"), vec![], 200),
        get(
            format!("{base}/acme/users"),
            t("/users"),
            vec![("state", "active"), ("limit", "2")],
            200,
        ),
        get(format!("{base}/nope/users"), t("/users"), vec![], 404),
        get(
            format!("{base}/acme/users/{employee}"),
            t("/users/{employeeId}"),
            vec![],
            200,
        ),
        get(
            format!("{base}/acme/users/999999"),
            t("/users/{employeeId}"),
            vec![],
            404,
        ),
        get(format!("{base}/acme/groups"), t("/groups"), vec![], 200),
        get(
            format!("{base}/acme/groups"),
            t("/groups"),
            vec![("limit", "0")],
            400,
        ),
        get(format!("{base}/nope/groups"), t("/groups"), vec![], 404),
        get(format!("{base}/acme/runs"), t("/runs"), vec![], 200),
        get(
            format!("{base}/acme/runs"),
            t("/runs"),
            vec![("limit", "0")],
            400,
        ),
        get(format!("{base}/nope/runs"), t("/runs"), vec![], 404),
        get(
            format!("{base}/acme/quarantine"),
            t("/quarantine"),
            vec![],
            200,
        ),
        get(
            format!("{base}/acme/quarantine"),
            t("/quarantine"),
            vec![("limit", "0")],
            400,
        ),
        get(
            format!("{base}/nope/quarantine"),
            t("/quarantine"),
            vec![],
            404,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("target", "app"), ("status", "delivered")],
            200,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("user", &employee)],
            200,
        ),
        get(
            format!("{base}/acme/deliveries"),
            t("/deliveries"),
            vec![("status", "lost")],
            400,
        ),
        get(
            format!("{base}/nope/deliveries"),
            t("/deliveries"),
            vec![],
            404,
        ),
        get(format!("{base}/acme/audit"), t("/audit"), vec![], 200),
        get(
            format!("{base}/acme/audit"),
            t("/audit"),
            vec![("limit", "501")],
            400,
        ),
        get(format!("{base}/nope/audit"), t("/audit"), vec![], 404),
        get(format!("{base}/acme/evidence"), t("/evidence"), vec![], 200),
        get(format!("{base}/nope/evidence"), t("/evidence"), vec![], 404),
    ];
    let mut cases = Vec::new();
    let mut bodies = HashMap::new();
    let mut calls: Vec<&Call> = Vec::new();
    for (phase, list) in [&configuration, &operations].into_iter().enumerate() {
        if phase == 1 {
            // A run between the phases, as the poller would make: the groups the
            // settings asked for, and the users as the reads see them.
            full_run(&h).await;
        }
        for c in list {
            let req = request(c.method, &c.path, &c.query, c.body.clone(), Some(CALLER));
            let (status, body) = call(&h.api, req).await;
            assert_eq!(
                status, c.want,
                "{} {} {:?} {:?}: {body}",
                c.method, c.path, c.query, c.body
            );
            bodies.insert(calls.len(), body.clone());
            calls.push(c);
            // A body the API took must be one the document describes.
            let accepted = (status < 300).then(|| c.body.clone()).flatten();
            cases.push(
                json!({"path": c.template, "method": c.method.to_lowercase(),
                              "status": status, "body": body, "request": accepted}),
            );
        }
    }
    // What the routes say, beyond their shape.
    let at = |method: &str, path: &str, want: u16| {
        let i = calls
            .iter()
            .position(|c| c.method == method && c.path == path && c.want == want)
            .unwrap();
        &bodies[&i]
    };
    let replay = at("POST", &format!("{base}/acme/replay"), 200);
    assert_eq!(replay["users"], 5);
    assert_eq!(
        replay["delivered"], 5,
        "a re-push sends whatever the ledger says"
    );
    let status = at("GET", &format!("{base}/acme/status"), 200);
    assert_eq!(status["state"], "active", "paused, then resumed");
    let connected = at("POST", base, 201);
    assert_eq!(connected["reauthenticated"], false);
    assert_eq!(connected["webhookUrl"], format!("{WEBHOOK_BASE_URL}/beta"));
    assert!(connected["webhookId"].is_string());
    assert_eq!(at("POST", base, 200)["reauthenticated"], true);
    let wrong_key = at("POST", base, 400);
    assert!(
        wrong_key["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bad API key"),
        "{wrong_key}"
    );
    let quarantined = at("GET", &format!("{base}/acme/quarantine"), 200)["items"].clone();
    assert_eq!(quarantined[0]["eventId"], json!(refused.id.to_string()));
    assert!(quarantined[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("MessageTooLong"));
    assert!(
        quarantined[0].get("data").is_none(),
        "ids and reasons only, never the HR data"
    );
    let runs = at("GET", &format!("{base}/acme/runs"), 200)["items"]
        .as_array()
        .unwrap();
    assert_eq!(
        runs.len(),
        2,
        "the harness's run and the one between the phases"
    );
    assert_eq!(runs[1]["id"], json!(h.run_id), "newest first");
    assert_eq!(status["lastRun"]["id"], runs[0]["id"]);
    let groups = at("GET", &format!("{base}/acme/groups"), 200);
    assert!(
        !groups["items"].as_array().unwrap().is_empty(),
        "department groups: {groups}"
    );
    let page = at("GET", base, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "acme and beta");
    assert!(page["nextCursor"].is_null());
    let audit = at("GET", &format!("{base}/acme/audit"), 200)["items"]
        .as_array()
        .unwrap();
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "reauthentication",
        "settings_change",
        "webhook_change",
        "key_change",
        "target_change",
        "replay",
        "pause",
        "resume",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert!(audit
        .iter()
        .filter(|e| e["action"] != "sync")
        .all(|e| e["actor"] == CALLER));
    let summary = at("GET", &format!("{base}/acme/users"), 200);
    assert!(
        summary["items"][0].get("emails").is_none(),
        "the list carries no HR fields"
    );
    // A setup link's token is answered once, when it is made, and never listed.
    let created = at("POST", &format!("{base}/acme/setup-links"), 201);
    assert!(
        created["url"].is_null(),
        "the harness names no setup base URL"
    );
    let listed = at("GET", &format!("{base}/acme/setup-links"), 200).to_string();
    assert!(listed.contains(made.link.id.as_str()), "{listed}");
    for token in [made_token.as_str(), created["token"].as_str().unwrap()] {
        let secret = token.rsplit('.').next().unwrap();
        assert!(!listed.contains(secret), "a token's secret in a list");
    }
    let revoked = at(
        "POST",
        &format!("{base}/acme/setup-links/{}/revoke", made.link.id),
        200,
    );
    assert_eq!(revoked["state"], "revoked");
    // No secret given to a route comes back from any.
    let everything = Value::Array(bodies.values().cloned().collect()).to_string();
    for secret in [
        hand_made,
        "oauth-client-secret-value",
        "scim-bearer-token",
        "lms-api-key",
        old_secret.trim_start_matches("whsec_"),
        new_secret.trim_start_matches("whsec_"),
    ] {
        assert!(!everything.contains(secret), "{secret} in an answer");
    }

    // Every documented route was exercised, with the method it documents.
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let exercised: BTreeSet<&str> = calls.iter().map(|c| c.template).collect();
    for template in &exercised {
        assert!(
            spec.contains(&format!("  {template}:")),
            "{template} undocumented"
        );
    }
    let documented = spec.lines().filter(|l| l.starts_with("  /admin/")).count();
    assert_eq!(documented, exercised.len());
    let operations: BTreeSet<(&str, &str)> = calls.iter().map(|c| (c.template, c.method)).collect();
    assert_eq!(
        documented_operations(&spec),
        operations
            .iter()
            .map(|(p, m)| format!("{} {p}", m.to_lowercase()))
            .collect::<BTreeSet<_>>(),
        "every documented operation exercised, and only those"
    );

    validate(&cases);
}

/// `method path` of every operation `spec` documents (read from its indentation).
fn documented_operations(spec: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut path: Option<&str> = None;
    for line in spec.lines() {
        if line.starts_with("  /admin/") {
            path = Some(line.trim().trim_end_matches(':'));
        } else if !line.starts_with(' ') {
            path = None;
        } else if let (Some(p), Some(method)) = (path, line.strip_prefix("    ")) {
            if let Some(method) = method
                .strip_suffix(':')
                .filter(|m| ["get", "post"].contains(m))
            {
                out.insert(format!("{method} {p}"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_the_problem_in_the_documented_error_shape() {
    let h = harness().await;
    let cases = [
        // A read route written to, a write route read, a route taking neither.
        (
            "POST",
            "/admin/directories/acme",
            None,
            Some(CALLER),
            405,
            "/admin/directories/{directoryId}",
        ),
        (
            "GET",
            "/admin/directories/acme/settings",
            None,
            Some(CALLER),
            405,
            "/admin/directories/{directoryId}/settings",
        ),
        (
            "DELETE",
            "/admin/directories/acme/targets/app",
            None,
            Some(CALLER),
            405,
            "/admin/directories/{directoryId}/targets/{targetId}",
        ),
        (
            "GET",
            "/admin/directories/acme/pause",
            None,
            Some(CALLER),
            405,
            "/admin/directories/{directoryId}/pause",
        ),
        // Without the authorizer's identity nothing changes.
        (
            "POST",
            "/admin/directories/acme/pause",
            None,
            None,
            403,
            "/admin/directories/{directoryId}/pause",
        ),
        // Unknown fields and malformed JSON are refused whole.
        (
            "POST",
            "/admin/directories/acme/sync",
            Some(json!({"mode": "full", "force": true})),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/sync",
        ),
        (
            "POST",
            "/admin/directories/acme/pause",
            Some(json!({"reason": "x"})),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/pause",
        ),
        (
            "POST",
            "/admin/directories/acme/targets",
            Some(
                json!({"id": "bus", "kind": "event_bridge", "busArn": "arn:aws:events:x",
                        "filter": {"state": ["active"]}}),
            ),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/targets",
        ),
        (
            "POST",
            "/admin/directories/acme/targets",
            Some(
                json!({"id": "bus", "kind": "event_bridge", "busArn": "arn:aws:events:x",
                        "secret": "s"}),
            ),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/targets",
        ),
        (
            "POST",
            "/admin/directories/acme/settings",
            Some(json!({"timezone": "UTC"})),
            Some(CALLER),
            400,
            "/admin/directories/{directoryId}/settings",
        ),
        (
            "POST",
            "/admin/directories/acme/replay",
            Some(json!({"target": "app", "employeeId": "999999"})),
            Some(CALLER),
            404,
            "/admin/directories/{directoryId}/replay",
        ),
        (
            "POST",
            "/admin/dead-letters/redrive",
            Some(json!({"directoryId": "nope"})),
            Some(CALLER),
            404,
            "/admin/dead-letters/redrive",
        ),
    ];
    let mut validated = Vec::new();
    for (method, path, body, caller, want, template) in cases {
        let (status, body) = call(&h.api, request(method, path, &[], body, caller)).await;
        assert_eq!(status, want, "{method} {path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.is_empty(), "{method} {path} says why");
        if status != 405 {
            validated.push(json!({"path": template, "method": method.to_lowercase(),
                                  "status": status, "body": body}));
        }
    }
    // Nothing above changed the directory or wrote an audit entry.
    let audit = h.api.engine.store.list_audit(&h.id, 50).await.unwrap();
    assert!(audit.iter().all(|e| e.action.as_str() != "pause"));
    let (status, body) = call(
        &h.api,
        request(
            "POST",
            "/admin/directories/acme/sync",
            &[],
            Some(json!("x")),
            Some(CALLER),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // 405s answer operations the document does not have; the rest are validated.
    validate(&validated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_directory_is_described_with_its_revocation_date() {
    let h = harness().await;
    sync_engine::operate::revoke(&h.api.engine, h.scheduler.as_ref(), &h.id, CALLER)
        .await
        .unwrap();
    let mut cases = Vec::new();
    for (path, template) in [
        (
            "/admin/directories/acme",
            "/admin/directories/{directoryId}",
        ),
        ("/admin/directories", "/admin/directories"),
    ] {
        let (status, body) = call(&h.api, request("GET", path, &[], None, Some(CALLER))).await;
        assert_eq!(status, 200, "{body}");
        let directory = if body.get("items").is_some() {
            &body["items"][0]
        } else {
            &body
        };
        assert_eq!(directory["state"], "revoked");
        assert!(directory["deletedAt"].is_string(), "{directory}");
        cases.push(json!({"path": template, "method": "get", "status": status, "body": body}));
    }
    validate(&cases);
}
