//! The credential of a live client: the `Authorization` header each attempt sends and,
//! for OAuth, the tokens behind it, refreshed before the access token expires or after
//! a 401 (once for all the requests that saw it), every new pair handed to the
//! [`TokenSink`](crate::TokenSink) so the rotated refresh token is not lost.

use std::sync::atomic::Ordering;

use reqwest::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use crate::auth::{Credential, OAuthState, RefreshedTokens};
use crate::client::{classify, error_code, transport_error, Call};
use crate::{Auth, BambooClient, BambooError, ClientOptions};

/// An access token this close to its expiry is refreshed before use, so it does not
/// expire in flight.
const EXPIRY_MARGIN: time::Duration = time::Duration::seconds(60);

impl BambooClient {
    /// The header to send and, for OAuth, the token generation it belongs to. Stores
    /// tokens the sink refused before, and refreshes an access token about to expire.
    pub(crate) async fn authorization(&self) -> Result<(HeaderValue, Option<u64>), BambooError> {
        let state = match &self.inner.credential {
            Credential::Fixed(header) => return Ok((header.clone(), None)),
            Credential::OAuth(state) => state,
        };
        let mut st = state.lock().await;
        if let Some(tokens) = st.unsaved.clone() {
            store_tokens(&mut st, &tokens).await?;
        }
        if st.oauth.refresh_token.is_some()
            && st
                .oauth
                .expires_within(OffsetDateTime::now_utc(), EXPIRY_MARGIN)
        {
            tracing::info!("access token expired or about to; refreshing");
            self.refresh_locked(&mut st).await?;
        }
        Ok((st.header.clone(), Some(st.generation)))
    }

    /// Refreshes the OAuth tokens unless another request already did since generation
    /// `seen` was used.
    pub(crate) async fn refresh(&self, seen: Option<u64>) -> Result<(), BambooError> {
        let Credential::OAuth(state) = &self.inner.credential else {
            return Err(BambooError::Unauthorized);
        };
        let mut st = state.lock().await;
        if seen.is_some_and(|g| g != st.generation) {
            return Ok(());
        }
        self.refresh_locked(&mut st).await
    }

    /// The refresh-token grant (RFC 6749 §6) at the token endpoint, then the sink. A
    /// refused grant is [`BambooError::Unauthorized`]: the directory must be reconnected.
    async fn refresh_locked(&self, st: &mut OAuthState) -> Result<(), BambooError> {
        let Some(refresh_token) = st.oauth.refresh_token.clone() else {
            return Err(BambooError::Unauthorized);
        };
        let token_url = match &st.oauth.token_url {
            Some(url) => url.clone(),
            None => format!("{}/token.php", self.inner.base),
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token.expose_secret())
            .append_pair("client_id", &st.oauth.client_id)
            .append_pair("client_secret", st.oauth.client_secret.expose_secret())
            .finish();
        let tokens = self
            .token_request(&token_url, body, "refresh_token")
            .await?;
        let header = Auth::Bearer(tokens.access_token.clone())
            .header_value()
            .ok_or_else(|| BambooError::bad_response("the access token cannot be a header"))?;
        st.oauth.absorb(&tokens);
        st.header = header;
        st.generation += 1;
        tracing::info!(generation = st.generation, "OAuth tokens refreshed");
        store_tokens(st, &tokens).await
    }

    /// One grant at the token endpoint (a form body), its tokens parsed. A refused
    /// grant (400, 401: `invalid_grant`, `invalid_client`) is
    /// [`BambooError::Unauthorized`].
    async fn token_request(
        &self,
        token_url: &str,
        body: String,
        op: &'static str,
    ) -> Result<RefreshedTokens, BambooError> {
        let token_url = token_url.to_string();
        let response = self
            .inner
            .http
            .post(&token_url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .timeout(self.inner.opts.timeout)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let status = response.status();
        let bytes = outbound_http::read_capped(response, 1 << 20)
            .await
            .map_err(|e| match e {
                outbound_http::ReadError::Refused(r) => BambooError::InvalidRequest {
                    status: Some(status.as_u16()),
                    reason: r.to_string(),
                },
                outbound_http::ReadError::Transport(e) => transport_error(e),
            })?;
        if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED {
            tracing::warn!(
                status = status.as_u16(),
                error = error_code(&bytes).as_deref().unwrap_or("none"),
                "the token endpoint refused the grant"
            );
            return Err(BambooError::Unauthorized);
        }
        if !status.is_success() {
            return Err(classify(
                status,
                None,
                &bytes,
                &Call {
                    op,
                    resource: "token endpoint",
                    method: Method::POST,
                    url: Url::parse(&token_url).map_err(|_| BambooError::InvalidConfig {
                        reason: "the token URL cannot be parsed".into(),
                    })?,
                    body: None,
                    idempotent: true,
                },
            ));
        }
        parse_token_response(&bytes, OffsetDateTime::now_utc())
    }

    /// The authorization-code grant (RFC 6749 §4.1.3) at the company's token endpoint
    /// (`<base_url>/token.php`, the spec's `tokenUrl`): how the first OAuth tokens of a
    /// company are obtained after its admin consented at `<base_url>/authorize.php`.
    /// `redirect_uri` must be the one the code was issued for. A refused code (expired,
    /// already used, another client's) is [`BambooError::Unauthorized`].
    pub async fn exchange_authorization_code(
        base_url: &str,
        opts: ClientOptions,
        code: &SecretString,
        redirect_uri: &str,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<RefreshedTokens, BambooError> {
        // The client's own credential is never sent by a token request.
        let client = Self::new(base_url, Auth::Bearer(SecretString::from("none")), opts)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", code.expose_secret())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("client_id", client_id)
            .append_pair("client_secret", client_secret.expose_secret())
            .finish();
        let token_url = format!("{}/token.php", client.inner.base);
        client
            .token_request(&token_url, body, "authorization_code")
            .await
    }
}

/// Hands tokens to the sink, remembering them as unsaved if it fails.
async fn store_tokens(st: &mut OAuthState, tokens: &RefreshedTokens) -> Result<(), BambooError> {
    let Some(sink) = st.oauth.sink.clone() else {
        st.unsaved = None;
        return Ok(());
    };
    match sink.store(tokens).await {
        Ok(()) => {
            st.unsaved = None;
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, "refreshed OAuth tokens not stored; will retry");
            st.unsaved = Some(tokens.clone());
            Err(match e {
                e @ BambooError::TokenStore { .. } => e,
                other => BambooError::TokenStore {
                    reason: other.to_string(),
                },
            })
        }
    }
}

/// The token endpoint's JSON (RFC 6749 §5.1): `access_token`, optional `refresh_token`
/// and `expires_in` (seconds from `now`).
fn parse_token_response(body: &[u8], now: OffsetDateTime) -> Result<RefreshedTokens, BambooError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| BambooError::bad_response("the token response is not JSON"))?;
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_string()))
    };
    let access_token =
        text("access_token").ok_or_else(|| BambooError::bad_response("no access_token"))?;
    let expires_at = v
        .get("expires_in")
        .and_then(|e| e.as_i64().or_else(|| e.as_str()?.parse().ok()))
        .map(|secs| now + time::Duration::seconds(secs));
    Ok(RefreshedTokens {
        access_token,
        refresh_token: text("refresh_token"),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_token_response_gives_the_new_pair_and_its_expiry() {
        let now = datetime!(2026-01-01 00:00:00 UTC);
        let t = parse_token_response(
            br#"{"access_token":"a2","refresh_token":"r2","expires_in":3600,"token_type":"Bearer"}"#,
            now,
        )
        .unwrap();
        assert_eq!(t.access_token.expose_secret(), "a2");
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "r2");
        assert_eq!(t.expires_at, Some(datetime!(2026-01-01 01:00:00 UTC)));
        let kept = parse_token_response(br#"{"access_token":"a3"}"#, now).unwrap();
        assert!(kept.refresh_token.is_none() && kept.expires_at.is_none());
        assert!(matches!(
            parse_token_response(br#"{"error":"x"}"#, now),
            Err(BambooError::BadResponse { .. })
        ));
    }
}
