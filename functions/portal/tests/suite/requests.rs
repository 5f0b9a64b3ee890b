//! The setup page's POST checks over plain HTTP (what a browser would never send, so
//! a browser cannot test it): a POST without the session's CSRF token, with a wrong
//! one, from another site or not as JSON is refused and changes nothing; credential
//! checks past the per-link limit are refused before BambooHR is called; every answer
//! carries the strict Content-Security-Policy.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use crate::common::{Stack, GOOD_KEY};

/// Opens a session with the link's token: the cookie to send back and the page's CSRF
/// token.
async fn open(stack: &Stack, url: &str) -> (String, String) {
    let token = url.split("#t=").nth(1).unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/setup/session", stack.base_url))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{}/setup/", stack.base_url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_string();
    (cookie, csrf)
}

async fn connect(
    stack: &Stack,
    cookie: &str,
    csrf: Option<&str>,
    key: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/setup/connect", stack.base_url))
        .header(COOKIE, cookie)
        .json(&json!({"subdomain": "acme", "apiKey": key}));
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing() {
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let (cookie, csrf) = open(&stack, &url).await;
    let before = stack.sim.request_count();

    let (status, body) = connect(&stack, &cookie, None, GOOD_KEY, &[]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = connect(&stack, &cookie, Some(&"0".repeat(64)), GOOD_KEY, &[]).await;
    assert_eq!(status, 403, "a wrong token");
    // Another session's token is no good either.
    let (_, other_csrf) = open(&stack, &url).await;
    assert_ne!(other_csrf, csrf);
    let (status, _) = connect(&stack, &cookie, Some(&other_csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 403, "the token of another session");
    // From another site, even with the token.
    let (status, _) = connect(
        &stack,
        &cookie,
        Some(&csrf),
        GOOD_KEY,
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(status, 403, "a foreign origin");
    // A plain form post (what a cross-site form can send) is not JSON.
    let resp = reqwest::Client::new()
        .post(format!("{}/setup/connect", stack.base_url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("subdomain=acme&apiKey=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    // Without a session at all.
    let (status, _) = connect(
        &stack,
        "bsync_setup=acme.sl00.x",
        Some(&csrf),
        GOOD_KEY,
        &[],
    )
    .await;
    assert_eq!(status, 401);

    assert!(stack.directory("acme").await.is_none(), "nothing connected");
    assert_eq!(stack.sim.request_count(), before, "BambooHR never called");

    // Choosing what syncs before connecting is refused plainly, changing nothing.
    let resp = reqwest::Client::new()
        .post(format!("{}/setup/settings", stack.base_url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"groupSources": ["department"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_connected", "{body}");

    // With its token, the same request connects.
    let (status, body) = connect(&stack, &cookie, Some(&csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["linked"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn credential_checks_past_five_a_minute_are_refused_before_bamboohr_is_called() {
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let (cookie, csrf) = open(&stack, &url).await;
    for _ in 0..5 {
        let (status, body) = connect(&stack, &cookie, Some(&csrf), "wrong", &[]).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_api_key");
        assert_eq!(body["error"]["field"], "apiKey");
    }
    let before = stack.sim.request_count();
    let (status, body) = connect(&stack, &cookie, Some(&csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(stack.sim.request_count(), before, "BambooHR not called");
    assert!(stack.directory("acme").await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_opens_nothing_and_every_answer_carries_a_strict_policy() {
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let token = url.split("#t=").nth(1).unwrap();
    let (prefix, _) = token.rsplit_once('.').unwrap();
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/setup/session", stack.base_url))
        .json(&json!({ "token": format!("{prefix}.{}", "A".repeat(43)) }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    for path in ["/setup/", "/setup/assets/portal.js", "/setup/nope"] {
        let resp = http
            .get(format!("{}{path}", stack.base_url))
            .send()
            .await
            .unwrap();
        let csp = resp.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    let page = http
        .get(format!("{}/setup/", stack.base_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>") && !page.contains(" style="),
        "no inline code"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bamboohrs_refusals_read_as_plain_errors_beside_the_field_to_fix() {
    // Missing permission: the key's user cannot see work emails.
    let stack = Stack::start_with(vec!["email".into()]).await;
    let (_, url) = stack.setup_link("acme").await;
    let (cookie, csrf) = open(&stack, &url).await;
    let (status, body) = connect(&stack, &cookie, Some(&csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "missing_permission");
    assert_eq!(body["error"]["field"], "apiKey");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("read-only access level is enough"),
        "{body}"
    );

    // Rate limited: BambooHR answers 429, asking for longer than the check may wait.
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let (cookie, csrf) = open(&stack, &url).await;
    stack.sim.inject(
        bamboohr_simulator::FaultPlan::next(bamboohr_simulator::Fault::rate_limited(120))
            .times(u64::MAX),
    );
    let (status, body) = connect(&stack, &cookie, Some(&csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "bamboohr_rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Try again in"),
        "{body}"
    );
    stack.sim.clear_faults();

    // Unknown subdomain: nothing answers for the company.
    let nowhere = format!("http://127.0.0.1:{}", test_peers::free_port());
    let (_, url) = stack.setup_link_to("beta", &nowhere).await;
    let (cookie, csrf) = open(&stack, &url).await;
    let (status, body) = connect(&stack, &cookie, Some(&csrf), GOOD_KEY, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_subdomain");
    assert_eq!(body["error"]["field"], "subdomain");
    // A subdomain that cannot be one is refused before BambooHR is asked.
    let resp = reqwest::Client::new()
        .post(format!("{}/setup/connect", stack.base_url))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"subdomain": "not a company!", "apiKey": GOOD_KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["field"], "subdomain", "{body}");
    assert!(stack.directory("acme").await.is_none());
    assert!(stack.directory("beta").await.is_none());
}

/// An HTTP API (payload 2.0) event as API Gateway hands it to the function.
fn event(method: &str, path: &str, body: Option<Value>, cookies: &[&str]) -> lambda_http::Request {
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} /setup/{{proxy+}}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "origin": "https://abc123.execute-api.us-east-1.amazonaws.com",
                    "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "portal-tests"},
            "requestId": "req-1", "routeKey": format!("{method} /setup/{{proxy+}}"),
            "stage": "$default", "time": "07/Dec/2026:13:00:00 +0000",
            "timeEpoch": 1_796_648_400_000i64
        },
        "isBase64Encoded": false
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if let Some(b) = body {
        event["body"] = json!(b.to_string());
    }
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway v2 event")
}

#[tokio::test(flavor = "multi_thread")]
async fn on_lambda_the_session_cookie_is_secure_and_read_from_api_gateways_cookies() {
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let token = url.split("#t=").nth(1).unwrap();
    let portal = portal::Portal::new(
        stack.engine.clone(),
        admin::client::AdminClient::new(admin::client::Transport::InProcess {
            api: std::sync::Arc::new(admin::AdminApi::new(stack.engine.clone(), None)),
            actor: "arn:aws:iam::123456789012:role/portal".into(),
        })
        .unwrap(),
        portal::Cookies::Secure,
    );
    let resp = portal::handler(
        &portal,
        event(
            "POST",
            "/setup/session",
            Some(json!({ "token": token })),
            &[],
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.ends_with("; Secure"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();

    let resp = portal::handler(&portal, event("GET", "/setup/", None, &[&cookie]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = match resp.body() {
        lambda_http::Body::Text(t) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert!(page.contains("Connect your BambooHR company"), "{page}");
    assert!(page.contains("name=\"csrf-token\""));
    // The bare path API Gateway may hand over for `/setup/` is the page too.
    let resp = portal::handler(&portal, event("GET", "/setup", None, &[&cookie]))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// `POST /setup/oauth/<step>` with `body` as the session `cookie`, with `csrf` if given.
async fn oauth_post(
    stack: &Stack,
    step: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/setup/oauth/{step}", stack.base_url))
        .header(COOKIE, cookie)
        .json(&body);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_with_bamboohr_is_refused_unconfigured_without_the_csrf_token_or_with_a_foreign_state(
) {
    let stack = Stack::start().await;
    let (_, url) = stack.setup_link("acme").await;
    let (cookie, csrf) = open(&stack, &url).await;
    let start = json!({"subdomain": "acme"});

    // Not offered until the operator sets the stack's OAuth client.
    let (status, body) = oauth_post(&stack, "start", &cookie, Some(&csrf), start.clone()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "oauth_not_offered");
    let (status, body) = stack
        .admin(
            "POST",
            "/admin/oauth-client",
            Some(json!({"clientId": "app", "clientSecret": "app-secret-0123456789"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Starting needs the session's CSRF token.
    let (status, _) = oauth_post(&stack, "start", &cookie, None, start.clone()).await;
    assert_eq!(status, 403);
    let (status, body) = oauth_post(&stack, "start", &cookie, Some(&csrf), start).await;
    assert_eq!(status, 200, "{body}");
    let authorize = body["authorizeUrl"].as_str().unwrap();
    assert!(authorize.starts_with(&format!("{}/authorize.php?", stack.sim_url)));
    assert!(!authorize.contains("app-secret"), "{authorize}");

    // Finishing with a state another session made (or none) changes nothing, and
    // BambooHR's token endpoint is never called.
    let before = stack.sim.token_request_count();
    let (_, other_session_url) = stack.setup_link("acme").await;
    let (other_cookie, other_csrf) = open(&stack, &other_session_url).await;
    let (_, other) = oauth_post(
        &stack,
        "start",
        &other_cookie,
        Some(&other_csrf),
        json!({"subdomain": "acme"}),
    )
    .await;
    let other_state = url::Url::parse(other["authorizeUrl"].as_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    for state in [other_state.as_str(), ""] {
        let (status, body) = oauth_post(
            &stack,
            "finish",
            &cookie,
            None,
            json!({"code": "sim-code-stolen", "state": state}),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "oauth_bad_state");
    }
    // Without the session, nothing is read.
    let (status, _) = oauth_post(
        &stack,
        "finish",
        "bsync_setup=acme.sl00.x",
        None,
        json!({"code": "c", "state": other_state}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(stack.sim.token_request_count(), before);
    assert!(stack.directory("acme").await.is_none());
}
