//! How the client proves who it is to BambooHR: an API key over HTTP Basic, or an OAuth
//! access token as a bearer token. Secrets stay wrapped until the header is built.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

/// The credential of one BambooHR company.
#[derive(Clone)]
pub enum Auth {
    /// An API key, sent over HTTP Basic with the key as the user name and `x` as the
    /// password, as BambooHR documents it.
    ApiKey(SecretString),
    /// An OAuth 2.0 access token, sent as `Authorization: Bearer`.
    Bearer(SecretString),
}

impl std::fmt::Debug for Auth {
    // Only the kind is ever shown: the secret must not reach logs through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("Auth::ApiKey(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

impl Auth {
    /// The kind of credential, for structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::ApiKey(_) => "api_key",
            Auth::Bearer(_) => "bearer",
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
        };
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
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
