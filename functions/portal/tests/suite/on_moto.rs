//! The setup page in headless Chromium on the AWS adapters: the portal and admin
//! handlers run over DynamoDB, Secrets Manager, EventBridge Scheduler and SQS on moto
//! (the harness the admin API's and the CLI's moto tests start from), the page calling
//! the admin API SigV4-signed through a stand-in for API Gateway's IAM authorizer. The
//! whole flow: open the link, a bad key, a good key (Linked with the count), department
//! groups, and the first sync's users at an app that verifies every signature with the
//! official Standard Webhooks library. Screenshots as the other browser tests, named
//! `moto-*`.

use std::sync::Arc;

use admin::client::{AdminClient, Transport};
use function_support::testing::{deploy, moto_sdk, MotoStack};
use serde_json::{json, Value};

use crate::common::{receiver, screenshot_dir, EMPLOYEES, GOOD_KEY, WHSEC};
use crate::webdriver::{Browser, ENTER};

/// Serves `router` on a free loopback port: its base URL.
async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn on_aws_an_it_admin_connects_through_a_setup_link_and_the_first_sync_reaches_the_app() {
    let sdk = moto_sdk(&test_peers::moto().endpoint).await;
    let MotoStack {
        config,
        audit_table,
        engine,
        ..
    } = deploy(&sdk, "bsync-portal").await;
    let sim = bamboohr_simulator::Simulator::generate(bamboohr_simulator::SimConfig {
        api_key: GOOD_KEY.into(),
        employees: EMPLOYEES,
        ..Default::default()
    });
    let sim_server = sim.serve().await.unwrap();
    let app = receiver();
    let shots = screenshot_dir();

    // The page's public API and the admin API behind IAM, each its own function with
    // its own engine on the stack's resources.
    let portal_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let portal_url = format!("http://{}", portal_listener.local_addr().unwrap());
    let api = Arc::new(
        admin::AdminApi::new(engine.clone(), None).with_setup_base_url(Some(portal_url.clone())),
    );
    let admin_url = serve(admin::local::iam_authorizer_stand_in(api)).await;
    let signed = || {
        AdminClient::new(Transport::Deployed {
            url: admin_url.clone(),
            sdk: Box::new(sdk.clone()),
        })
        .unwrap()
    };
    let page_engine = function_support::aws_engine_with_audit_table(&sdk, &config, &audit_table);
    let portal = Arc::new(portal::Portal::new(
        page_engine,
        signed(),
        portal::Cookies::Loopback,
    ));
    let router = portal::local::router(portal);
    tokio::spawn(async move {
        axum::serve(portal_listener, router).await.unwrap();
    });

    // The operator makes the link, SigV4-signed.
    let operator = signed();
    let made = operator
        .post(
            "/admin/directories/acme/setup-links",
            &json!({"bamboohrBaseUrl": sim_server.base_url}),
        )
        .await
        .unwrap();
    let url = made["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{portal_url}/setup/#t=")), "{url}");
    let browser = Browser::start(1100, 1500).await;

    // 1. Open the link.
    browser.goto(&url).await;
    let subdomain = browser.wait_for("#subdomain").await;
    browser
        .screenshot(&shots.join("moto-01-open-link.png"))
        .await;

    // 2. A bad key: the error beside the key; nothing is stored in DynamoDB.
    browser.type_into(&subdomain, "acme").await;
    let key = browser.wait_for("#apiKey").await;
    browser.type_into(&key, "not-the-key").await;
    browser.type_into(&key, ENTER).await;
    browser
        .wait_for_text("#apiKey-error", "did not accept this API key")
        .await;
    let id = domain::DirectoryId::parse("acme").unwrap();
    assert!(engine.store.get_directory(&id).await.unwrap().is_none());
    browser.screenshot(&shots.join("moto-02-bad-key.png")).await;

    // 3. The good key: Linked with the count; the key in Secrets Manager only.
    let key = browser.wait_for("#apiKey").await;
    browser.clear(&key).await;
    browser.type_into(&key, GOOD_KEY).await;
    browser.type_into(&key, ENTER).await;
    let count = browser
        .wait_for_text("#employee-count", "in BambooHR")
        .await;
    assert_eq!(count, format!("{EMPLOYEES} in BambooHR"));
    let d = engine
        .store
        .get_directory(&id)
        .await
        .unwrap()
        .expect("connected");
    let stored = engine.secrets.get(&d.secret_name).await.unwrap();
    assert_eq!(
        stored
            .bamboohr_api_key
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret),
        Some(GOOD_KEY)
    );
    let held = aws_adapters::clients::secrets_manager(&sdk)
        .describe_secret()
        .secret_id(format!("{}acme/bamboohr", config.secret_prefix))
        .send()
        .await;
    assert!(
        held.is_ok(),
        "the key's secret in Secrets Manager: {held:?}"
    );
    browser.screenshot(&shots.join("moto-03-linked.png")).await;

    // The operator's app, a target of the directory.
    operator
        .post(
            "/admin/directories/acme/targets",
            &json!({"id": "app", "kind": "app_webhook",
                    "url": format!("{}/hook", app.base_url()), "secret": WHSEC}),
        )
        .await
        .unwrap();

    // 4. Department groups, chosen on the page.
    let department = browser
        .wait_for("input[name=groupSources][value=department]")
        .await;
    browser.click(&department).await;
    let save = browser
        .wait_for("form[data-action=settings] button[type=submit]")
        .await;
    browser.click(&save).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let d = engine.store.get_directory(&id).await.unwrap().unwrap();
        if d.group_sources.iter().any(|g| g.field == "department") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "groups never saved");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    browser
        .wait_for("input[name=groupSources][value=department]:checked")
        .await;
    browser
        .screenshot(&shots.join("moto-04-department-groups.png"))
        .await;

    // 5. The poller's and dispatcher's work on the same resources: the first sync, then
    //    every change through the dispatcher handler to the verifying app.
    let (bus, mut events) = embedded_adapters::InProcessBus::new();
    let worker = sync_engine::Engine::new(
        engine.store.clone(),
        engine.secrets.clone(),
        Arc::new(bus),
        engine.clock.clone(),
    )
    .with_retry_queue(engine.retry_queue.clone().unwrap());
    let run = sync_engine::operate::run_sync(
        &worker,
        &domain::SyncRequest {
            directory_id: id.clone(),
            mode: domain::SyncMode::Full,
        },
        &sync_engine::reconcile::run::RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(run.counts.created, EMPLOYEES as u64, "{:?}", run.errors);
    let mut records = Vec::new();
    while let Ok(e) = events.try_recv() {
        records.push(dispatcher::change_queue_message(&e, &e.id.to_string()));
    }
    for chunk in records.chunks(10) {
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = chunk.to_vec();
        let response = dispatcher::handler(
            &worker,
            lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()),
        )
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    let deliveries: Vec<Value> = reqwest::get(format!("{}/deliveries", app.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(deliveries.iter().all(|d| d["verified"] == true));
    let of = |t: &str| deliveries.iter().filter(|d| d["type"] == t).count();
    assert_eq!(of("user.created"), EMPLOYEES, "{deliveries:?}");
    assert!(
        of("group.created") >= 1,
        "department groups: {deliveries:?}"
    );

    // The page shows the run, read from DynamoDB.
    browser.goto(&format!("{portal_url}/setup/")).await;
    browser
        .wait_for_text("#last-run", &format!("{EMPLOYEES} created"))
        .await;
    browser
        .screenshot(&shots.join("moto-05-first-sync.png"))
        .await;

    // Audited in the DynamoDB audit table under the page's IAM identity for the link,
    // never with the key.
    let audit = engine.store.list_audit(&id, 50).await.unwrap();
    let by_page: Vec<&str> = audit
        .iter()
        .filter(|e| {
            e.actor
                .starts_with("arn:aws:iam::123456789012:user/testing for setup-link:")
        })
        .map(|e| e.action.as_str())
        .collect();
    assert!(by_page.contains(&"connect"), "{by_page:?}");
    assert!(by_page.contains(&"settings_change"), "{by_page:?}");
    assert!(!serde_json::to_string(&audit).unwrap().contains(GOOD_KEY));
    browser.close().await;
}
