//! BambooHR credentials from a directory's secret (its [`SecretPart::Bamboohr`] part, the
//! only one the poller may write), and the write-back of refreshed OAuth tokens into it.
//!
//! BambooHR rotates the refresh token on every refresh: the old one stops working. The
//! client therefore hands each refreshed pair to [`SecretTokenSink`], which writes it into
//! the directory's secret (read-modify-write of [`DirectorySecrets::oauth`]) before the
//! next run, or another function, could need it.

use std::sync::Arc;

use async_trait::async_trait;
use bamboohr_client::{Auth, BambooError, OAuth, RefreshedTokens, TokenSink};
use ports::{DirectorySecrets, SecretPart, SecretStore};

/// Writes refreshed OAuth tokens into one directory's secret.
pub struct SecretTokenSink {
    secrets: Arc<dyn SecretStore>,
    secret_name: String,
}

impl SecretTokenSink {
    /// A sink for the secret called `secret_name` in `secrets`.
    pub fn new(secrets: Arc<dyn SecretStore>, secret_name: impl Into<String>) -> Self {
        Self {
            secrets,
            secret_name: secret_name.into(),
        }
    }
}

impl std::fmt::Debug for SecretTokenSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretTokenSink")
            .field("secret_name", &self.secret_name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenSink for SecretTokenSink {
    async fn store(&self, tokens: &RefreshedTokens) -> Result<(), BambooError> {
        let failed = |reason: String| BambooError::TokenStore { reason };
        let mut secrets = self
            .secrets
            .get_parts(&self.secret_name, &[SecretPart::Bamboohr])
            .await
            .map_err(|e| failed(e.to_string()))?;
        // Only the token fields change: the client id and secret and the API key are kept
        // as read, and the other parts (webhook keys, target credentials) are not
        // touched at all.
        let Some(oauth) = secrets.oauth.as_mut() else {
            // Creating an OAuth section here could resurrect a connection an operator just
            // switched to an API key; refuse instead.
            return Err(failed(format!(
                "secret {} holds no OAuth tokens to update",
                self.secret_name
            )));
        };
        oauth.access_token = tokens.access_token.clone();
        if let Some(refresh) = &tokens.refresh_token {
            oauth.refresh_token = Some(refresh.clone());
        }
        oauth.expires_at = tokens.expires_at.map(|t| t.unix_timestamp());
        self.secrets
            .put_parts(&self.secret_name, &[SecretPart::Bamboohr], &secrets)
            .await
            .map_err(|e| failed(e.to_string()))?;
        tracing::info!(secret = %self.secret_name, "refreshed OAuth tokens stored");
        Ok(())
    }
}

/// The BambooHR credential a directory's secret gives: the API key when there is one,
/// else OAuth — refreshable (writing back through `sink`) when the secret has a refresh
/// token and the OAuth client's id and secret, a fixed bearer token otherwise. `None`
/// when the secret holds neither.
pub fn bamboohr_auth(
    secrets: &DirectorySecrets,
    token_url: Option<String>,
    sink: Option<Arc<dyn TokenSink>>,
) -> Option<Auth> {
    if let Some(key) = &secrets.bamboohr_api_key {
        return Some(Auth::ApiKey(key.clone()));
    }
    let o = secrets.oauth.as_ref()?;
    match (&o.refresh_token, &o.client_id, &o.client_secret) {
        (Some(refresh), Some(client_id), Some(client_secret)) => Some(Auth::OAuth(OAuth {
            access_token: o.access_token.clone(),
            refresh_token: Some(refresh.clone()),
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            token_url,
            expires_at: o
                .expires_at
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok()),
            sink,
        })),
        _ => Some(Auth::Bearer(o.access_token.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_adapters::FileSecrets;
    use ports::OAuthTokens;
    use secrecy::{ExposeSecret, SecretString};
    use time::macros::datetime;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn with_oauth() -> DirectorySecrets {
        DirectorySecrets {
            oauth: Some(OAuthTokens {
                access_token: secret("old-access"),
                refresh_token: Some(secret("old-refresh")),
                expires_at: Some(1),
                client_id: Some("client-1".into()),
                client_secret: Some(secret("client-secret")),
            }),
            webhook_keys: vec![secret("webhook-key")],
            ..DirectorySecrets::default()
        }
    }

    #[tokio::test]
    async fn refreshed_tokens_replace_the_old_ones_and_nothing_else_using_only_the_bamboohr_part() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(FileSecrets::open(dir.path().join("s.json")));
        store.put("dir-1", &with_oauth()).await.unwrap();
        // The poller's role may use the BambooHR part only.
        let poller: Arc<dyn SecretStore> = Arc::new(ports::contract_secrets::OnlyParts::new(
            store.clone(),
            &[SecretPart::Bamboohr],
        ));
        let sink = SecretTokenSink::new(poller, "dir-1");

        sink.store(&RefreshedTokens {
            access_token: secret("new-access"),
            refresh_token: Some(secret("new-refresh")),
            expires_at: Some(datetime!(2030-01-01 00:00:00 UTC)),
        })
        .await
        .unwrap();

        let got = store.get("dir-1").await.unwrap();
        let o = got.oauth.unwrap();
        assert_eq!(o.access_token.expose_secret(), "new-access");
        assert_eq!(o.refresh_token.unwrap().expose_secret(), "new-refresh");
        assert_eq!(o.expires_at, Some(1_893_456_000));
        assert_eq!(o.client_id.as_deref(), Some("client-1"));
        assert_eq!(o.client_secret.unwrap().expose_secret(), "client-secret");
        assert_eq!(got.webhook_keys[0].expose_secret(), "webhook-key");
    }

    #[tokio::test]
    async fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(FileSecrets::open(dir.path().join("s.json")));
        store.put("dir-1", &with_oauth()).await.unwrap();
        SecretTokenSink::new(store.clone(), "dir-1")
            .store(&RefreshedTokens {
                access_token: secret("new-access"),
                refresh_token: None,
                expires_at: None,
            })
            .await
            .unwrap();
        let o = store.get("dir-1").await.unwrap().oauth.unwrap();
        assert_eq!(o.refresh_token.unwrap().expose_secret(), "old-refresh");
        assert_eq!(o.expires_at, None);
    }

    #[tokio::test]
    async fn a_secret_without_oauth_or_a_missing_secret_is_a_store_error_that_names_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(FileSecrets::open(dir.path().join("s.json")));
        store
            .put(
                "api-key-dir",
                &DirectorySecrets {
                    bamboohr_api_key: Some(secret("key")),
                    ..DirectorySecrets::default()
                },
            )
            .await
            .unwrap();
        let tokens = RefreshedTokens {
            access_token: secret("new-access-value"),
            refresh_token: None,
            expires_at: None,
        };
        for name in ["api-key-dir", "missing-dir"] {
            let err = SecretTokenSink::new(store.clone(), name)
                .store(&tokens)
                .await
                .unwrap_err();
            assert!(matches!(err, BambooError::TokenStore { .. }), "{err}");
            assert!(err.is_retryable());
            assert!(!err.to_string().contains("new-access-value"));
        }
        let untouched = store.get("api-key-dir").await.unwrap();
        assert!(untouched.oauth.is_none());
    }

    #[test]
    fn oauth_with_a_refresh_token_and_client_is_refreshable_and_otherwise_a_fixed_bearer() {
        let full = with_oauth();
        assert_eq!(bamboohr_auth(&full, None, None).unwrap().kind(), "oauth");
        let mut bare = with_oauth();
        bare.oauth.as_mut().unwrap().client_secret = None;
        assert_eq!(bamboohr_auth(&bare, None, None).unwrap().kind(), "bearer");
        let key = DirectorySecrets {
            bamboohr_api_key: Some(secret("k")),
            ..with_oauth()
        };
        assert_eq!(bamboohr_auth(&key, None, None).unwrap().kind(), "api_key");
        assert!(bamboohr_auth(&DirectorySecrets::default(), None, None).is_none());
    }
}
