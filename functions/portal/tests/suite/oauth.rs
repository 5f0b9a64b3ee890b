//! "Connect with BambooHR" in headless Chromium against the simulator's OAuth
//! endpoints (`/authorize.php`, `/token.php`): offered only once the operator set the
//! stack's OAuth client through the admin API; consent brings the browser back with a
//! code the page exchanges and connects with; denied consent, a foreign `state` and an
//! expired code say so on the page and change nothing. Screenshots as the other
//! browser tests.

use secrecy::SecretString;
use serde_json::json;
use sync_engine::operate::run_sync;
use sync_engine::reconcile::run::RunOptions;

use crate::common::{screenshot_dir, Stack, EMPLOYEES};
use crate::webdriver::Browser;

const CLIENT_ID: &str = "stack-directory-sync";
const CLIENT_SECRET: &str = "stack-oauth-client-secret-0123456789";

/// Sets the stack's OAuth client through the admin API, and registers the same
/// application with the simulated BambooHR.
async fn offer_oauth(stack: &Stack) {
    stack.sim.register_oauth_client(CLIENT_ID, CLIENT_SECRET);
    let (status, body) = stack
        .admin(
            "POST",
            "/admin/oauth-client",
            Some(json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"configured": true, "clientId": CLIENT_ID}));
}

/// From the connect page: the subdomain, then "Connect with BambooHR", up to
/// BambooHR's consent page.
async fn to_consent(browser: &Browser) {
    let subdomain = browser.wait_for("#subdomain").await;
    browser.clear(&subdomain).await;
    browser.type_into(&subdomain, "acme").await;
    let button = browser.wait_for("#oauth-connect").await;
    browser.click(&button).await;
    browser.wait_for("#allow").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_it_admin_connects_with_bamboohr_by_oauth_and_the_sync_runs_on_the_tokens() {
    let stack = Stack::start().await;
    let shots = screenshot_dir();
    let (_, url) = stack.setup_link("acme").await;
    let browser = Browser::start(1100, 1500).await;

    // Not configured: the API-key form alone.
    browser.goto(&url).await;
    browser.wait_for("#apiKey").await;
    assert!(
        browser.find("#oauth-connect").await.is_none(),
        "no OAuth button without the stack's OAuth client"
    );

    // The operator sets the stack's OAuth client: the page offers it.
    offer_oauth(&stack).await;
    browser.goto(&format!("{}/setup/", stack.base_url)).await;
    browser.wait_for("#oauth-connect").await;
    browser
        .screenshot(&shots.join("10-oauth-offered.png"))
        .await;

    // To BambooHR's consent page for the company, with a state and the callback.
    to_consent(&browser).await;
    let authorize = url::Url::parse(&browser.url().await).unwrap();
    assert!(authorize
        .as_str()
        .starts_with(&format!("{}/authorize.php?", stack.sim_url)));
    let q: std::collections::BTreeMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["redirect_uri"],
        format!("{}/setup/oauth/callback", stack.base_url)
    );
    assert!(q["scope"].contains("offline_access"), "{q:?}");
    assert!(q["state"].contains(".acme."), "{q:?}");
    assert!(!authorize.as_str().contains(CLIENT_SECRET));
    browser
        .screenshot(&shots.join("11-oauth-consent.png"))
        .await;

    // Allowed: back on the page, linked with BambooHR's employee count.
    let allow = browser.wait_for("#allow").await;
    browser.click(&allow).await;
    let count = browser
        .wait_for_text("#employee-count", "in BambooHR")
        .await;
    assert_eq!(count, format!("{EMPLOYEES} in BambooHR"));
    assert!(
        !browser.url().await.contains("code="),
        "the code leaves the address bar"
    );
    browser.screenshot(&shots.join("12-oauth-linked.png")).await;

    // Connected with OAuth tokens the simulator issued, for the stack's client.
    let d = stack.directory("acme").await.expect("connected");
    assert_eq!(d.auth, domain::AuthKind::OAuth);
    let secrets = stack.engine.secrets.get(&d.secret_name).await.unwrap();
    let tokens = secrets.oauth.expect("OAuth tokens stored");
    assert!(secrets.bamboohr_api_key.is_none());
    let access = secrecy::ExposeSecret::expose_secret(&tokens.access_token).to_string();
    assert!(stack.sim.access_token_is_live(&access));
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access: a refresh token"
    );
    assert_eq!(tokens.client_id.as_deref(), Some(CLIENT_ID));

    // The sync reads the company with them; when the access token expires, it
    // refreshes it with the stack's client.
    let request = domain::SyncRequest {
        directory_id: d.id.clone(),
        mode: domain::SyncMode::Full,
    };
    let run = run_sync(&stack.engine, &request, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(run.counts.created, EMPLOYEES as u64);
    stack.sim.expire_access_token(&access);
    let before = stack.sim.token_request_count();
    run_sync(&stack.engine, &request, &RunOptions::default())
        .await
        .unwrap();
    assert!(stack.sim.token_request_count() > before, "refreshed");

    // Audited through the admin API under the page's caller for the link; no token or
    // client secret anywhere in the audit log.
    let (_, audit) = stack
        .admin("GET", "/admin/directories/acme/audit", None)
        .await;
    let connect = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "connect")
        .expect("the connect is audited");
    assert!(connect["actor"]
        .as_str()
        .unwrap()
        .starts_with("local:operator for setup-link:"));
    let (_, stack_audit) = stack
        .admin("GET", "/admin/directories/_stack/audit", None)
        .await;
    assert_eq!(stack_audit["items"][0]["action"], "oauth_client_change");
    for text in [audit.to_string(), stack_audit.to_string()] {
        assert!(!text.contains(CLIENT_SECRET) && !text.contains(&access));
    }
    let page = browser.script("return document.body.innerHTML").await;
    assert!(!page.as_str().unwrap().contains(&access));

    // Removed: the button leaves the page again.
    let (status, _) = stack
        .admin("POST", "/admin/oauth-client/remove", None)
        .await;
    assert_eq!(status, 200);
    browser.goto(&format!("{}/setup/", stack.base_url)).await;
    browser.wait_for("#linked").await;
    browser.wait_for("#reauthenticate").await;
    assert!(browser.find("#oauth-connect").await.is_none());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_consent_a_foreign_state_and_an_expired_code_are_shown_and_change_nothing() {
    let stack = Stack::start().await;
    let shots = screenshot_dir();
    offer_oauth(&stack).await;
    let (_, url) = stack.setup_link("acme").await;
    let browser = Browser::start(1100, 1100).await;
    browser.goto(&url).await;

    // Denied at BambooHR.
    to_consent(&browser).await;
    let deny = browser.wait_for("#deny").await;
    browser.click(&deny).await;
    let shown = browser.wait_for_text("#oauth-error", "not allowed").await;
    assert!(shown.contains("Nothing was changed"), "{shown}");
    assert!(stack.directory("acme").await.is_none());
    browser.screenshot(&shots.join("13-oauth-denied.png")).await;

    // A state this session did not make: forged, or another session's.
    let now = time::OffsetDateTime::now_utc();
    let foreign = sync_engine::operate::setup_links::oauth_state(
        &SecretString::from("another-browser's-session"),
        "acme",
        now,
    );
    for state in ["forged".to_string(), foreign] {
        browser
            .goto(&format!(
                "{}/setup/oauth/callback?code=sim-code-x&state={state}",
                stack.base_url
            ))
            .await;
        let shown = browser
            .wait_for_text("#oauth-error", "did not start from this setup page")
            .await;
        assert!(shown.contains("Nothing was changed"), "{shown}");
    }
    browser
        .screenshot(&shots.join("14-oauth-bad-state.png"))
        .await;
    assert!(stack.directory("acme").await.is_none());

    // A code that expired before the browser came back: BambooHR refuses it.
    browser.goto(&format!("{}/setup/", stack.base_url)).await;
    to_consent(&browser).await;
    let authorize = url::Url::parse(&browser.url().await).unwrap();
    let q: std::collections::BTreeMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/authorize.php", stack.sim_url))
        .form(&[
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("state", q["state"].as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 302);
    let callback = back.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.contains("code=") && callback.contains("state="),
        "{callback}"
    );
    stack.sim.expire_authorization_codes();
    browser.goto(&callback).await;
    let shown = browser
        .wait_for_text("#oauth-error", "expired or was already used")
        .await;
    assert!(shown.contains("Nothing was changed"), "{shown}");
    assert!(stack.directory("acme").await.is_none());
    browser
        .screenshot(&shots.join("15-oauth-expired-code.png"))
        .await;

    // Started again, the flow connects.
    browser.goto(&format!("{}/setup/", stack.base_url)).await;
    to_consent(&browser).await;
    let allow = browser.wait_for("#allow").await;
    browser.click(&allow).await;
    browser.wait_for("#linked").await;
    assert!(stack.directory("acme").await.is_some());
    browser.close().await;
}
