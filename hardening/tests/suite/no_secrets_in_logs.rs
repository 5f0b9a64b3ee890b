//! No log line carries a secret or an HR value. Every representative flow runs
//! in-process on the production adapters (DynamoDB, Secrets Manager, EventBridge and SQS
//! on moto) with one subscriber capturing everything at TRACE level, ours and every
//! library's (AWS SDK, hyper, reqwest, and `log` records too): a full sync from the
//! BambooHR simulator, a signed field-based webhook, and the dispatcher delivering to an
//! app webhook (verified by the official Standard Webhooks library) and to a SCIM 2.0
//! server (the real `scim2-server`). The capture is then searched for every seeded
//! secret (API key, webhook private key, whsec secret, SCIM bearer token) and for the
//! names and emails of the simulated company.
//!
//! Needs moto and the Python peers (`PEER_PYTHON`, as scripts/test sets it).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bamboohr_simulator::{SimConfig, Simulator};
use domain::{Directory, DirectoryId, ScimConfig, Target, TargetFilter, TargetId, TargetKind};
use integration_tests::{sqs_event, TestStack};
use lambda_runtime::{Context, LambdaEvent};
use ports::{DirectorySecrets, TargetSecrets};
use secrecy::SecretString;
use serde_json::json;
use sync_engine::signing::bamboohr_signature;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

const API_KEY: &str = "bamboo-api-key-LEAKCHECK-7d1f0c";
const WEBHOOK_KEY: &str = "bamboo-webhook-private-key-LEAKCHECK-5b2e";
/// The whsec secret's key bytes are what must not leak; the base64 text is searched.
const WHSEC_B64: &str = "TEVBS0NIRUNLLXNpZ25pbmctc2VjcmV0LTlhM2M0ZA==";
const SCIM_TOKEN: &str = "scim-bearer-LEAKCHECK-0e8a";
/// The job title the webhook sets: an HR value that never appears elsewhere.
const NEW_TITLE: &str = "Principal Leakcheck Archivist";

/// Every byte any subscriber layer writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn peer(script: &str, env: &[(&str, &str)]) -> test_peers::PeerProcess {
    let script = test_peers::workspace_root()
        .join("tests/peers")
        .join(script);
    test_peers::spawn_python_peer(&script, &[], env)
}

/// Moves `want` messages of the change queue through the dispatcher, a batch at a
/// time (FIFO groups hold back later messages until a batch is deleted).
async fn drain(stack: &TestStack, engine: &sync_engine::Engine, want: usize) {
    let mut done = 0;
    while done < want {
        let messages = stack.receive(1, Duration::from_secs(20)).await;
        assert!(
            !messages.is_empty(),
            "{done} of {want} events reached the queue"
        );
        let response = dispatcher::handler(
            engine,
            LambdaEvent::new(sqs_event(&messages), Context::default()),
        )
        .await
        .unwrap();
        assert!(
            response.batch_item_failures.is_empty(),
            "no delivery failed"
        );
        stack.delete(&messages).await;
        done += messages.len();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_of_a_sync_a_webhook_or_a_delivery_carries_a_secret_or_an_hr_value() {
    let capture = Capture::default();
    let sink = capture.clone();
    // Everything at TRACE, through the production filter: what `RUST_LOG=trace` on
    // Lambda would write (the AWS SDK's body-carrying TRACE events are cut there).
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_target(true)
        .with_writer(move || sink.clone())
        .with_filter(filter_fn(function_support::carries_no_bodies));
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .expect("the only subscriber of this test binary");

    let stack = TestStack::provision().await;
    // Deliveries need a retry queue; an in-process one stands in for the stack's SQS queue.
    let engine = function_support::aws_engine(&stack.sdk, &stack.config).with_retry_queue(
        std::sync::Arc::new(embedded_adapters::InProcessRetryQueue::new(
            std::sync::Arc::new(ports::SystemClock),
        )),
    );
    let simulator = Simulator::generate(SimConfig {
        api_key: API_KEY.into(),
        seed: 8,
        employees: 12,
        ..SimConfig::default()
    });
    let sim = simulator.serve().await.unwrap();
    let whsec = format!("whsec_{WHSEC_B64}");
    let app = peer("webhook_receiver.py", &[("WEBHOOK_SECRET", &whsec)]);
    let scim = peer("scim_server.py", &[("SCIM_BEARER_TOKEN", SCIM_TOKEN)]);

    let dir = DirectoryId::parse("acme").unwrap();
    let mut targets = std::collections::BTreeMap::new();
    targets.insert(
        "app".to_string(),
        TargetSecrets {
            signing_secrets: vec![SecretString::from(whsec.clone())],
            ..Default::default()
        },
    );
    targets.insert(
        "scim".to_string(),
        TargetSecrets {
            bearer_token: Some(SecretString::from(SCIM_TOKEN)),
            ..Default::default()
        },
    );
    engine
        .secrets
        .put(
            "acme",
            &DirectorySecrets {
                bamboohr_api_key: Some(SecretString::from(API_KEY)),
                webhook_keys: vec![SecretString::from(WEBHOOK_KEY)],
                targets,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut directory = Directory::new(dir.clone(), "acme", "acme").unwrap();
    directory.base_url = Some(sim.base_url.clone());
    directory.targets = vec![
        Target {
            id: TargetId::parse("app").unwrap(),
            kind: TargetKind::app_webhook(format!("{}/hooks/app", app.base_url())),
            filter: TargetFilter::default(),
            enabled: true,
        },
        Target {
            id: TargetId::parse("scim").unwrap(),
            kind: TargetKind::Scim {
                base_url: format!("{}/v2", scim.base_url()),
                scim: ScimConfig::default(),
            },
            filter: TargetFilter::default(),
            enabled: true,
        },
    ];
    directory.version = 1;
    engine.store.put_directory(&directory, None).await.unwrap();

    // A full sync, and its deliveries to both targets.
    let poller = poller::Poller::new(engine.clone());
    let run = poller::handler(
        &poller,
        LambdaEvent::new(
            json!({"directoryId": "acme", "mode": "full"}),
            Context::default(),
        ),
    )
    .await
    .unwrap()
    .run
    .expect("the directory was synced");
    assert!(run.counts.created > 0, "{:?}", run.counts);
    drain(&stack, &engine, run.counts.events_published as usize).await;

    // A signed field-based webhook changing one employee's title, and its deliveries.
    let employee = simulator
        .employees()
        .into_iter()
        .find(|e| e.work_email.is_some())
        .expect("an employee with a work email");
    let body = json!({"employees": [{
        "id": employee.employee_id,
        "action": "Updated",
        "timestamp": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        "changedFields": ["Job Title"],
        "fields": {
            "First Name": employee.first_name,
            "Last Name": employee.last_name,
            "Work Email": employee.work_email,
            "Job Title": NEW_TITLE,
        }
    }]})
    .to_string();
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let request = lambda_http::http::Request::builder()
        .method("POST")
        .uri("https://api.test/webhooks/bamboohr/acme")
        .header("content-type", "application/json")
        .header("x-bamboohr-timestamp", &ts)
        .header(
            "x-bamboohr-signature",
            bamboohr_signature(WEBHOOK_KEY.as_bytes(), body.as_bytes(), &ts),
        )
        .body(lambda_http::Body::Text(body))
        .unwrap();
    let deps = webhook::Deps::new(engine.clone());
    let response = webhook::handler(&deps, request).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body());
    drain(&stack, &engine, 1).await;

    // The flows really ran and really were captured, ours and the libraries' lines.
    let deliveries: Vec<serde_json::Value> = reqwest::get(format!("{}/deliveries", app.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        deliveries.len() > run.counts.created as usize,
        "{}",
        deliveries.len()
    );
    let log = capture.text();
    for expected in [
        "\"level\":\"TRACE\"",
        "dataset",
        "aws_smithy_runtime",
        "SCIM",
    ] {
        assert!(log.contains(expected), "the capture lacks {expected}");
    }

    let mut forbidden: Vec<(String, String)> = vec![
        ("the BambooHR API key".into(), API_KEY.into()),
        ("the webhook private key".into(), WEBHOOK_KEY.into()),
        ("the whsec signing secret".into(), WHSEC_B64.into()),
        ("the SCIM bearer token".into(), SCIM_TOKEN.into()),
        ("a job title".into(), NEW_TITLE.into()),
    ];
    for e in simulator.employees() {
        let full_name = format!("{} {}", e.first_name, e.last_name);
        forbidden.push(("an employee's full name".into(), full_name));
        forbidden.push(("an employee's last name".into(), e.last_name.clone()));
        for email in [e.work_email, e.home_email].into_iter().flatten() {
            forbidden.push(("an employee's email".into(), email));
        }
        for phone in [e.work_phone, e.mobile_phone, e.home_phone]
            .into_iter()
            .flatten()
        {
            forbidden.push(("an employee's phone".into(), phone));
        }
    }
    let leaks: Vec<String> = forbidden
        .iter()
        .filter(|(_, value)| value.len() >= 4 && log.contains(value.as_str()))
        .map(|(what, value)| {
            let at = log.find(value.as_str()).unwrap();
            let line_start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let line_end = log[at..].find('\n').map_or(log.len(), |i| at + i);
            let line = &log[line_start..line_end];
            let target = line
                .split("\"target\":\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap_or("?");
            format!(
                "{what} in a line of {target}: {}",
                &line[..line.len().min(300)]
            )
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} leak(s) in {} bytes of logs:\n{}",
        leaks.len(),
        log.len(),
        leaks.join("\n")
    );
}
