//! The setup page in a real browser (Debian's headless Chromium), against the
//! simulator and the embedded adapters: each step is saved as a screenshot under
//! `<target>/setup-page-screenshots/`.

use serde_json::{json, Value};
use sync_engine::operate::run_sync;
use sync_engine::reconcile::run::RunOptions;

use crate::common::{receiver, screenshot_dir, Stack, EMPLOYEES, GOOD_KEY, WHSEC};
use crate::webdriver::{Browser, ENTER, TAB};

#[tokio::test(flavor = "multi_thread")]
async fn an_it_admin_connects_their_company_through_a_setup_link_and_the_first_sync_reaches_the_app(
) {
    let stack = Stack::start().await;
    let app = receiver();
    let shots = screenshot_dir();
    let (_, url) = stack.setup_link("acme").await;
    assert!(url.contains("/setup/#t="), "{url}");
    let browser = Browser::start(1100, 1500).await;

    // 1. The link opens the page; the token leaves the address bar.
    browser.goto(&url).await;
    browser.wait_for("#subdomain").await;
    assert!(
        !browser.url().await.contains("#t="),
        "the token is dropped from the address bar"
    );
    let page = browser.script("return document.body.innerText").await;
    let page = page.as_str().unwrap();
    assert!(
        page.contains("API Keys") && page.contains("read-only"),
        "{page}"
    );
    browser.screenshot(&shots.join("01-open-link.png")).await;

    // 2. A bad key: BambooHR refuses it, the page says so beside the key, nothing is
    //    connected. Submitted with the keyboard (Enter in the key field).
    let subdomain = browser.wait_for("#subdomain").await;
    browser.type_into(&subdomain, "acme.bamboohr.com").await;
    // Keyboard only: Tab moves from the subdomain to the key (hints are not stops).
    browser.type_into(&subdomain, TAB).await;
    let key = browser.focused().await;
    browser.type_into(&key, "not-the-key").await;
    assert_eq!(
        browser.script("return document.activeElement.id").await,
        json!("apiKey")
    );
    browser.type_into(&key, ENTER).await;
    let error = browser
        .wait_for_text("#apiKey-error", "did not accept this API key")
        .await;
    assert!(!error.contains("not-the-key"), "{error}");
    let key = browser.wait_for("#apiKey").await;
    assert_eq!(
        browser
            .script("return document.getElementById('apiKey').getAttribute('aria-invalid')")
            .await,
        json!("true")
    );
    assert_eq!(
        browser.script("return document.activeElement.id").await,
        json!("apiKey"),
        "the focus goes to the field to fix"
    );
    assert!(stack.directory("acme").await.is_none());
    browser.screenshot(&shots.join("02-bad-key.png")).await;

    // 3. The good key: Linked, with the employee count BambooHR reported.
    browser.clear(&key).await;
    browser.type_into(&key, GOOD_KEY).await;
    let connect = browser
        .wait_for("form[data-action=connect] button[type=submit]")
        .await;
    browser.click(&connect).await;
    browser.wait_for("#linked").await;
    let count = browser
        .wait_for_text("#employee-count", "in BambooHR")
        .await;
    assert_eq!(count, format!("{EMPLOYEES} in BambooHR"));
    let d = stack.directory("acme").await.expect("connected");
    assert_eq!(
        d.subdomain, "acme",
        "the pasted address reads as its subdomain"
    );
    let page = browser.script("return document.body.innerHTML").await;
    assert!(
        !page.as_str().unwrap().contains(GOOD_KEY),
        "the stored key is never shown"
    );
    browser.screenshot(&shots.join("03-linked.png")).await;

    // The operator's app receives the directory's changes (a target of the directory,
    // set through the admin API).
    let (status, body) = stack
        .admin(
            "POST",
            "/admin/directories/acme/targets",
            Some(json!({"id": "app", "kind": "app_webhook",
                        "url": format!("{}/hook", app.base_url()), "secret": WHSEC})),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // 4. Department groups, chosen on the page.
    let department = browser
        .wait_for("input[name=groupSources][value=department]")
        .await;
    browser.click(&department).await;
    let save = browser
        .wait_for("form[data-action=settings] button[type=submit]")
        .await;
    browser.click(&save).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stack
        .directory("acme")
        .await
        .unwrap()
        .group_sources
        .iter()
        .all(|g| g.field != "department")
    {
        assert!(std::time::Instant::now() < deadline, "groups never saved");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let department = browser
        .wait_for("input[name=groupSources][value=department]")
        .await;
    assert_eq!(browser.property(&department, "checked").await, json!(true));
    browser
        .screenshot(&shots.join("04-department-groups.png"))
        .await;

    // 5. The first sync: every user, and the department groups, reach the app, each
    //    delivery verified by the official Standard Webhooks library.
    let run = run_sync(
        &stack.engine,
        &domain::SyncRequest {
            directory_id: d.id.clone(),
            mode: domain::SyncMode::Full,
        },
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(run.counts.created, EMPLOYEES as u64);
    stack.deliver_published().await;
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
    assert!(of("group.user_added") >= 1, "{deliveries:?}");

    // The page shows the run and its counts.
    browser.goto(&format!("{}/setup/", stack.base_url)).await;
    let last = browser
        .wait_for_text("#last-run", &format!("{EMPLOYEES} created"))
        .await;
    assert!(last.contains("completed"), "{last}");
    browser.screenshot(&shots.join("05-first-sync.png")).await;

    // Readable on a phone: nothing wider than the screen.
    browser.resize(390, 844).await;
    let wide = browser
        .script("return document.documentElement.scrollWidth <= window.innerWidth")
        .await;
    assert_eq!(wide, json!(true), "no sideways scrolling on a phone");
    browser.screenshot(&shots.join("06-phone.png")).await;

    // Disconnect, confirmed: syncing stops, and the page offers to connect again.
    browser.resize(1100, 1500).await;
    let confirm = browser.wait_for("#confirm-disconnect").await;
    browser.click(&confirm).await;
    let disconnect = browser
        .wait_for("form[data-action=disconnect] button[type=submit]")
        .await;
    browser.click(&disconnect).await;
    browser.wait_for_text("main", "Disconnected").await;
    assert_eq!(
        stack.directory("acme").await.unwrap().state,
        domain::DirectoryState::Revoked
    );
    browser.screenshot(&shots.join("07-disconnected.png")).await;

    // Every change the page made went through the admin API and is audited there
    // under the page's caller for the link, never with the key.
    let (_, audit) = stack
        .admin("GET", "/admin/directories/acme/audit", None)
        .await;
    let entries = audit["items"].as_array().unwrap();
    let by_link: Vec<&str> = entries
        .iter()
        .filter(|e| {
            let actor = e["actor"].as_str().unwrap();
            actor.starts_with("local:operator for setup-link:")
        })
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["connect", "settings_change", "revoke"] {
        assert!(by_link.contains(&action), "{action}: {by_link:?}");
    }
    assert!(!audit.to_string().contains(GOOD_KEY));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_revoked_link_shows_a_clear_page_and_changes_nothing() {
    let stack = Stack::start().await;
    let shots = screenshot_dir();
    let browser = Browser::start(1100, 900).await;

    // Expired: made eight days ago with the default expiry of seven.
    let mut past = stack.engine.clone();
    past.clock = std::sync::Arc::new(ports::FixedClock::new(
        time::OffsetDateTime::now_utc() - time::Duration::days(8),
    ));
    let old = sync_engine::operate::create_setup_link(
        &past,
        &domain::DirectoryId::parse("oldco").unwrap(),
        sync_engine::operate::NewSetupLink::default(),
        "local:operator",
    )
    .await
    .unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&old.token).to_string();
    browser
        .goto(&format!("{}/setup/#t={token}", stack.base_url))
        .await;
    let shown = browser.wait_for_text("#link-expired", "has expired").await;
    assert!(shown.contains("Nothing was changed"), "{shown}");
    browser.screenshot(&shots.join("08-expired-link.png")).await;
    let link = stack
        .engine
        .store
        .get_setup_link(&old.link.directory_id, &old.link.id)
        .await
        .unwrap()
        .unwrap();
    assert!(link.sessions.is_empty(), "an expired link opens no session");
    assert!(stack.directory("oldco").await.is_none());

    // Revoked before it was opened.
    let (id, url) = stack.setup_link("acme").await;
    let (status, _) = stack
        .admin(
            "POST",
            &format!("/admin/directories/acme/setup-links/{id}/revoke"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    browser.goto(&url).await;
    browser.wait_for_text("#link-revoked", "was revoked").await;
    browser.screenshot(&shots.join("09-revoked-link.png")).await;

    // Revoked while open: the next load says so (410), and a POST changes nothing.
    let (id, url) = stack.setup_link("acme").await;
    browser.goto(&url).await;
    browser.wait_for("#subdomain").await;
    stack
        .admin(
            "POST",
            &format!("/admin/directories/acme/setup-links/{id}/revoke"),
            None,
        )
        .await;
    let subdomain = browser.wait_for("#subdomain").await;
    browser.type_into(&subdomain, "acme").await;
    let key = browser.wait_for("#apiKey").await;
    browser.type_into(&key, GOOD_KEY).await;
    browser.type_into(&key, ENTER).await;
    browser.wait_for_text("#link-revoked", "was revoked").await;
    assert!(
        stack.directory("acme").await.is_none(),
        "nothing was connected"
    );
    browser.close().await;
}
