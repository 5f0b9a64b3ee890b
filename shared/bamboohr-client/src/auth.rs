//! How the client proves who it is to BambooHR: an API key over HTTP Basic, a fixed OAuth
//! access token, or OAuth tokens the client refreshes itself (`offline_access`), handing
//! every new pair to a [`TokenSink`] so the rotated refresh token is not lost. Secrets
//! stay wrapped until the header or the token request is built.

use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::BambooError;

/// Tokens the client obtained from BambooHR's token endpoint.
#[derive(Clone)]
pub struct RefreshedTokens {
    /// The new access token.
    pub access_token: SecretString,
    /// The new refresh token; BambooHR rotates it, so the old one no longer works. `None`
    /// when the endpoint kept the old one (it is then still valid).
    pub refresh_token: Option<SecretString>,
    /// When the new access token expires, when the endpoint said.
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for RefreshedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedTokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where refreshed tokens are written back (the directory's secret), so that the next
/// run, or another function, starts from the rotated refresh token.
#[async_trait]
pub trait TokenSink: Send + Sync {
    /// Stores the tokens. An error fails the call that refreshed with
    /// [`BambooError::TokenStore`]; the client keeps the tokens and tries to store them
    /// again before its next request.
    async fn store(&self, tokens: &RefreshedTokens) -> Result<(), BambooError>;
}

/// OAuth 2.0 credentials that the client refreshes when the access token has expired or
/// BambooHR answers 401.
#[derive(Clone)]
pub struct OAuth {
    /// The current access token.
    pub access_token: SecretString,
    /// The refresh token (`offline_access`); without it an expired token is final.
    pub refresh_token: Option<SecretString>,
    /// The OAuth client's id.
    pub client_id: String,
    /// The OAuth client's secret.
    pub client_secret: SecretString,
    /// The token endpoint; `None` means the company's `/token.php` (the spec's `tokenUrl`,
    /// relative to the company's host), i.e. the client's base URL + `/token.php`.
    pub token_url: Option<String>,
    /// When the access token expires, if known; it is refreshed shortly before.
    pub expires_at: Option<OffsetDateTime>,
    /// Receives every refreshed pair.
    pub sink: Option<Arc<dyn TokenSink>>,
}

impl OAuth {
    /// Takes refreshed tokens in, keeping the old refresh token when none was issued.
    pub(crate) fn absorb(&mut self, tokens: &RefreshedTokens) {
        self.access_token = tokens.access_token.clone();
        if let Some(refresh) = &tokens.refresh_token {
            self.refresh_token = Some(refresh.clone());
        }
        self.expires_at = tokens.expires_at;
    }

    /// Whether the access token expires within `margin` of `now`.
    pub(crate) fn expires_within(&self, now: OffsetDateTime, margin: time::Duration) -> bool {
        self.expires_at.is_some_and(|at| at - margin <= now)
    }
}

/// The credential of one BambooHR company.
#[derive(Clone)]
pub enum Auth {
    /// An API key, sent over HTTP Basic with the key as the user name and `x` as the
    /// password, as BambooHR documents it.
    ApiKey(SecretString),
    /// An OAuth 2.0 access token, sent as `Authorization: Bearer`, never refreshed.
    Bearer(SecretString),
    /// OAuth 2.0 tokens sent as `Authorization: Bearer` and refreshed by the client.
    OAuth(OAuth),
}

impl std::fmt::Debug for Auth {
    // Only the kind is ever shown: the secret must not reach logs through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("Auth::ApiKey(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
            Auth::OAuth(o) => write!(f, "Auth::OAuth(client {}, <redacted>)", o.client_id),
        }
    }
}

impl Auth {
    /// The kind of credential, for structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::ApiKey(_) => "api_key",
            Auth::Bearer(_) => "bearer",
            Auth::OAuth(_) => "oauth",
        }
    }

    /// The `Authorization` header value, marked sensitive so that HTTP-level debug output
    /// never prints it. `None` when the secret cannot be a header (control characters).
    pub(crate) fn header_value(&self) -> Option<HeaderValue> {
        let text = match self {
            Auth::ApiKey(key) => {
                let pair = format!("{}:x", key.expose_secret());
                format!("Basic {}", STANDARD.encode(pair))
            }
            Auth::Bearer(token) => format!("Bearer {}", token.expose_secret()),
            Auth::OAuth(o) => format!("Bearer {}", o.access_token.expose_secret()),
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

/// The `Authorization` header source: fixed, or OAuth tokens refreshed in place.
pub(crate) enum Credential {
    Fixed(HeaderValue),
    OAuth(Box<tokio::sync::Mutex<OAuthState>>),
}

/// The live OAuth tokens of a client. The lock is held across a refresh so that
/// concurrent requests that all see a 401 refresh once, not once each.
pub(crate) struct OAuthState {
    pub(crate) oauth: OAuth,
    pub(crate) header: HeaderValue,
    /// Bumped by every refresh: a 401 for an older generation needs no new refresh.
    pub(crate) generation: u64,
    /// Tokens the sink has not accepted yet.
    pub(crate) unsaved: Option<RefreshedTokens>,
}

impl Credential {
    /// OAuth tokens the client refreshes itself, starting from `oauth` and its `header`.
    pub(crate) fn oauth(oauth: OAuth, header: HeaderValue) -> Self {
        Self::OAuth(Box::new(tokio::sync::Mutex::new(OAuthState {
            oauth,
            header,
            generation: 0,
            unsaved: None,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_key_is_sent_as_basic_auth_with_x_as_the_password() {
        let auth = Auth::ApiKey(SecretString::from("abc123"));
        let value = auth.header_value().unwrap();
        // base64("abc123:x")
        assert_eq!(value.to_str().unwrap(), "Basic YWJjMTIzOng=");
        assert!(value.is_sensitive());
    }

    #[test]
    fn a_token_is_sent_as_a_bearer_header() {
        let auth = Auth::Bearer(SecretString::from("tok"));
        assert_eq!(auth.header_value().unwrap().to_str().unwrap(), "Bearer tok");
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let auth = Auth::ApiKey(SecretString::from("super-secret-key"));
        let shown = format!("{auth:?}");
        assert!(!shown.contains("super-secret-key"));
    }

    #[test]
    fn a_secret_with_a_newline_cannot_become_a_header() {
        let auth = Auth::Bearer(SecretString::from("a\nb"));
        assert!(auth.header_value().is_none());
    }
}
