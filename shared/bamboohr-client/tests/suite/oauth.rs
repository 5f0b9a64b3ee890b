//! OAuth 2.0 against the simulator's token endpoint: an expired or revoked access token is
//! refreshed once, the request goes through, and the sink receives the rotated pair.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bamboohr_client::{
    async_trait, Auth, BambooClient, BambooError, ClientOptions, OAuth, RefreshedTokens,
    SecretString, TokenSink,
};
use bamboohr_simulator::{SimConfig, Simulator};
use secrecy::ExposeSecret;
use time::OffsetDateTime;

/// Keeps what it is given; fails the first `fail` stores.
#[derive(Default)]
struct Recorder {
    stored: Mutex<Vec<RefreshedTokens>>,
    fail: Mutex<u32>,
}

#[async_trait]
impl TokenSink for Recorder {
    async fn store(&self, tokens: &RefreshedTokens) -> Result<(), BambooError> {
        let mut fail = self.fail.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return Err(BambooError::TokenStore {
                reason: "store unavailable".into(),
            });
        }
        self.stored.lock().unwrap().push(tokens.clone());
        Ok(())
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        max_attempts: 3,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        budget: Duration::from_secs(10),
        max_concurrency: 4,
        ..ClientOptions::default()
    }
}

fn oauth(
    access: &str,
    refresh: &str,
    expires_at: Option<OffsetDateTime>,
    sink: Arc<Recorder>,
) -> Auth {
    Auth::OAuth(OAuth {
        access_token: SecretString::from(access.to_string()),
        refresh_token: Some(SecretString::from(refresh.to_string())),
        client_id: "client-1".into(),
        client_secret: SecretString::from("client-secret"),
        token_url: None,
        expires_at,
        sink: Some(sink),
    })
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once_and_the_sink_receives_the_new_pair() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    let (access, refresh) = sim.issue_oauth_tokens("client-1", "client-secret");
    sim.expire_access_token(&access);
    let sink = Arc::new(Recorder::default());
    let client = BambooClient::new(
        &server.base_url,
        oauth(&access, &refresh, None, sink.clone()),
        opts(),
    )
    .unwrap();

    let page = client.list_employees_page(&[], None, 5).await.unwrap();
    assert_eq!(page.employees.len(), 5);
    assert_eq!(sim.token_request_count(), 1, "refreshed exactly once");

    let stored = sink.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    let new_access = stored[0].access_token.expose_secret().to_string();
    let new_refresh = stored[0]
        .refresh_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_string();
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh, "the refresh token rotated");
    assert!(sim.access_token_is_live(&new_access));
    assert!(stored[0]
        .expires_at
        .is_some_and(|t| t > OffsetDateTime::now_utc()));

    // Later calls use the new token without refreshing again.
    client.list_employees_page(&[], None, 5).await.unwrap();
    assert_eq!(sim.token_request_count(), 1);
}

#[tokio::test]
async fn a_token_past_its_expiry_is_refreshed_before_the_request_is_sent() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    let (access, refresh) = sim.issue_oauth_tokens("client-1", "client-secret");
    let sink = Arc::new(Recorder::default());
    let expired = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let client = BambooClient::new(
        &server.base_url,
        oauth(&access, &refresh, Some(expired), sink.clone()),
        opts(),
    )
    .unwrap();
    let before = sim.request_count();

    client.list_employees_page(&[], None, 2).await.unwrap();
    assert_eq!(sim.token_request_count(), 1);
    assert_eq!(
        sim.request_count() - before,
        1,
        "no request was sent with the stale token"
    );
    assert_eq!(sink.stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_refresh_token_is_unauthorized_after_one_try() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    let (access, _) = sim.issue_oauth_tokens("client-1", "client-secret");
    sim.expire_access_token(&access);
    let sink = Arc::new(Recorder::default());
    let client = BambooClient::new(
        &server.base_url,
        oauth(&access, "not-a-refresh-token", None, sink.clone()),
        opts(),
    )
    .unwrap();

    let err = client.list_employees_page(&[], None, 2).await.unwrap_err();
    assert!(matches!(err, BambooError::Unauthorized), "{err}");
    assert!(!err.to_string().contains("not-a-refresh-token"));
    assert_eq!(sim.token_request_count(), 1);
    assert!(sink.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn tokens_the_sink_refused_are_stored_before_the_next_request() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    let (access, refresh) = sim.issue_oauth_tokens("client-1", "client-secret");
    sim.expire_access_token(&access);
    let sink = Arc::new(Recorder {
        fail: Mutex::new(1),
        ..Recorder::default()
    });
    let client = BambooClient::new(
        &server.base_url,
        oauth(&access, &refresh, None, sink.clone()),
        opts(),
    )
    .unwrap();

    // The call refreshed but could not store: it says so, and the retry (an attempt of
    // the same call) stores the tokens first, then succeeds without a second refresh.
    client.list_employees_page(&[], None, 2).await.unwrap();
    assert_eq!(sim.token_request_count(), 1);
    assert_eq!(sink.stored.lock().unwrap().len(), 1);
}

/// Consent at the simulator's `/authorize.php`, as a browser submits it: where BambooHR
/// sends the browser back (the `Location`).
async fn consent(base: &str, client_id: &str, redirect_uri: &str, decision: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(format!("{base}/authorize.php"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", "s-1"),
            ("scope", "employee offline_access"),
        ])
        .send()
        .await
        .unwrap();
    if page.status() != 200 {
        return (page.status().as_u16(), String::new());
    }
    assert!(page.text().await.unwrap().contains("id=\"allow\""));
    let back = http
        .post(format!("{base}/authorize.php"))
        .form(&[
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("state", "s-1"),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap();
    let status = back.status().as_u16();
    let location = back
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, location)
}

fn param(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_string())
}

#[tokio::test]
async fn an_authorization_code_is_exchanged_once_for_working_tokens_at_its_redirect_uri_only() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    sim.register_oauth_client("client-1", "client-secret");
    let secret = SecretString::from("client-secret");
    let back_to = "https://app.example/setup/oauth/callback";

    let (status, location) = consent(&server.base_url, "client-1", back_to, "allow").await;
    assert_eq!(status, 302);
    assert!(location.starts_with(back_to), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("s-1"));
    let code = SecretString::from(param(&location, "code").unwrap());

    // Another redirect URI than the code's is refused, and does not spend the code.
    let other = BambooClient::exchange_authorization_code(
        &server.base_url,
        opts(),
        &code,
        "https://evil.example/cb",
        "client-1",
        &secret,
    )
    .await;
    assert!(matches!(other, Err(BambooError::Unauthorized)), "{other:?}");
    let tokens = BambooClient::exchange_authorization_code(
        &server.base_url,
        opts(),
        &code,
        back_to,
        "client-1",
        &secret,
    )
    .await
    .unwrap();
    let access = tokens.access_token.expose_secret().to_string();
    assert!(sim.access_token_is_live(&access));
    assert!(tokens.refresh_token.is_some());
    let client = BambooClient::new(
        &server.base_url,
        Auth::Bearer(tokens.access_token.clone()),
        opts(),
    )
    .unwrap();
    client.list_employees_page(&[], None, 2).await.unwrap();

    // Used twice: refused, and what it issued is revoked (RFC 6749 §10.5).
    let again = BambooClient::exchange_authorization_code(
        &server.base_url,
        opts(),
        &code,
        back_to,
        "client-1",
        &secret,
    )
    .await;
    assert!(matches!(again, Err(BambooError::Unauthorized)));
    assert!(!sim.access_token_is_live(&access));

    // An expired code is refused.
    let (_, location) = consent(&server.base_url, "client-1", back_to, "allow").await;
    let late = SecretString::from(param(&location, "code").unwrap());
    sim.expire_authorization_codes();
    let expired = BambooClient::exchange_authorization_code(
        &server.base_url,
        opts(),
        &late,
        back_to,
        "client-1",
        &secret,
    )
    .await;
    assert!(matches!(expired, Err(BambooError::Unauthorized)));
}

#[tokio::test]
async fn denied_consent_returns_an_error_and_an_unknown_client_is_never_redirected() {
    let sim = Simulator::generate(SimConfig::default());
    let server = sim.serve().await.unwrap();
    sim.register_oauth_client("client-1", "client-secret");
    let back_to = "https://app.example/cb";
    let (status, location) = consent(&server.base_url, "client-1", back_to, "deny").await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("s-1"));
    assert!(param(&location, "code").is_none());
    let (status, location) = consent(&server.base_url, "nobody", back_to, "allow").await;
    assert_eq!(status, 400);
    assert!(location.is_empty());
}
