//! Per-directory credentials: one secret per directory, cached in memory for minutes,
//! never logged (every value is a `SecretString`, whose Debug prints a placeholder).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// Why a secret could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretsError {
    /// No secret by that name.
    #[error("secret {name} not found")]
    NotFound {
        /// The secret's name (never its value).
        name: String,
    },
    /// The secret exists but is not in the expected shape.
    #[error("secret {name} is malformed: {reason}")]
    Malformed {
        /// The secret's name.
        name: String,
        /// Which part is wrong (never the value).
        reason: String,
    },
    /// The secret store could not be reached.
    #[error("secret store unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
    },
}

impl SecretsError {
    /// Only unavailability may pass by itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// OAuth 2.0 tokens for BambooHR.
#[derive(Debug, Clone)]
pub struct OAuthTokens {
    /// Bearer token.
    pub access_token: SecretString,
    /// Refresh token (`offline_access`).
    pub refresh_token: Option<SecretString>,
    /// When the access token expires (unix seconds).
    pub expires_at: Option<i64>,
    /// OAuth client id.
    pub client_id: Option<String>,
    /// OAuth client secret.
    pub client_secret: Option<SecretString>,
}

/// Credentials of one delivery target.
#[derive(Debug, Clone, Default)]
pub struct TargetSecrets {
    /// Standard Webhooks signing secrets (`whsec_...`); two during rotation, newest first.
    pub signing_secrets: Vec<SecretString>,
    /// Bearer token (SCIM).
    pub bearer_token: Option<SecretString>,
    /// Secret query or header parts of an HTTP upsert URL (name -> value).
    pub url_params: BTreeMap<String, SecretString>,
}

/// Everything secret about one directory.
#[derive(Debug, Clone, Default)]
pub struct DirectorySecrets {
    /// BambooHR API key (HTTP Basic user).
    pub bamboohr_api_key: Option<SecretString>,
    /// BambooHR OAuth tokens.
    pub oauth: Option<OAuthTokens>,
    /// BambooHR webhook private keys; two may be active during rotation.
    pub webhook_keys: Vec<SecretString>,
    /// Opt-in URL token for webhooks that cannot be signed.
    pub webhook_url_token: Option<SecretString>,
    /// Per-target credentials, keyed by target id.
    pub targets: BTreeMap<String, TargetSecrets>,
    /// When each key of a key list (webhook keys, signing secrets) was added, unix
    /// seconds, by [`key_id`]: what an operator sees of a key is its id and age.
    pub key_added_at: BTreeMap<String, i64>,
}

/// The public id of a key in a key list (a webhook key, a signing secret): the first
/// 12 hex digits of a domain-separated SHA-256 of the key. Keys are high-entropy
/// (their length is checked where they are accepted), so the id reveals nothing usable,
/// and it needs no storage of its own: it stays the same wherever the key is.
pub fn key_id(key: &SecretString) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"bamboohr-sync key id\0")
        .chain_update(key.expose_secret().as_bytes())
        .finalize();
    format!("key_{}", hex::encode(&digest[..6]))
}

/// What an operator sees of one key: its id, when it was added (unknown for keys
/// stored before ages were kept) and its place in the list (0: newest, the one used
/// to sign).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// [`key_id`] of the key.
    pub id: String,
    /// When it was added, unix seconds.
    pub added_at: Option<i64>,
    /// 0 for the newest key.
    pub position: usize,
}

impl DirectorySecrets {
    /// The ids and ages of `keys` (a list of this secret's).
    pub fn key_infos(&self, keys: &[SecretString]) -> Vec<KeyInfo> {
        keys.iter()
            .enumerate()
            .map(|(position, k)| {
                let id = key_id(k);
                KeyInfo {
                    added_at: self.key_added_at.get(&id).copied(),
                    id,
                    position,
                }
            })
            .collect()
    }

    /// Drops the ages of keys no list holds any more.
    pub fn forget_retired_keys(&mut self) {
        let live: std::collections::BTreeSet<String> = self
            .webhook_keys
            .iter()
            .chain(self.targets.values().flat_map(|t| t.signing_secrets.iter()))
            .map(key_id)
            .collect();
        self.key_added_at.retain(|id, _| live.contains(id));
    }
}

// The wire shape exists only to cross the (de)serialisation boundary; values are
// wrapped again immediately.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireOAuth {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireTarget {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signing_secrets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    url_params: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WireSecrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bamboohr_api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oauth: Option<WireOAuth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    webhook_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_url_token: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    targets: BTreeMap<String, WireTarget>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    key_added_at: BTreeMap<String, i64>,
}

fn wrap(s: String) -> SecretString {
    SecretString::from(s)
}

fn expose(s: &SecretString) -> String {
    s.expose_secret().to_string()
}

impl DirectorySecrets {
    /// Parses the stored JSON form. Errors name the secret and the problem, never a value.
    pub fn from_json(name: &str, json: &str) -> Result<Self, SecretsError> {
        let w: WireSecrets = serde_json::from_str(json).map_err(|e| SecretsError::Malformed {
            name: name.to_string(),
            // serde's message can quote input; keep only its position.
            reason: format!(
                "not the expected JSON shape (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        Ok(Self {
            bamboohr_api_key: w.bamboohr_api_key.map(wrap),
            oauth: w.oauth.map(|o| OAuthTokens {
                access_token: wrap(o.access_token),
                refresh_token: o.refresh_token.map(wrap),
                expires_at: o.expires_at,
                client_id: o.client_id,
                client_secret: o.client_secret.map(wrap),
            }),
            webhook_keys: w.webhook_keys.into_iter().map(wrap).collect(),
            webhook_url_token: w.webhook_url_token.map(wrap),
            targets: w
                .targets
                .into_iter()
                .map(|(k, t)| {
                    (
                        k,
                        TargetSecrets {
                            signing_secrets: t.signing_secrets.into_iter().map(wrap).collect(),
                            bearer_token: t.bearer_token.map(wrap),
                            url_params: t
                                .url_params
                                .into_iter()
                                .map(|(k, v)| (k, wrap(v)))
                                .collect(),
                        },
                    )
                })
                .collect(),
            key_added_at: w.key_added_at,
        })
    }

    /// The stored JSON form, itself secret.
    pub fn to_json(&self) -> SecretString {
        let w = WireSecrets {
            bamboohr_api_key: self.bamboohr_api_key.as_ref().map(expose),
            oauth: self.oauth.as_ref().map(|o| WireOAuth {
                access_token: expose(&o.access_token),
                refresh_token: o.refresh_token.as_ref().map(expose),
                expires_at: o.expires_at,
                client_id: o.client_id.clone(),
                client_secret: o.client_secret.as_ref().map(expose),
            }),
            webhook_keys: self.webhook_keys.iter().map(expose).collect(),
            webhook_url_token: self.webhook_url_token.as_ref().map(expose),
            targets: self
                .targets
                .iter()
                .map(|(k, t)| {
                    (
                        k.clone(),
                        WireTarget {
                            signing_secrets: t.signing_secrets.iter().map(expose).collect(),
                            bearer_token: t.bearer_token.as_ref().map(expose),
                            url_params: t
                                .url_params
                                .iter()
                                .map(|(k, v)| (k.clone(), expose(v)))
                                .collect(),
                        },
                    )
                })
                .collect(),
            key_added_at: self.key_added_at.clone(),
        };
        wrap(serde_json::to_string(&w).expect("secrets always serialize"))
    }
}

/// Where directory secrets live.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Reads a directory's secrets.
    async fn get(&self, name: &str) -> Result<DirectorySecrets, SecretsError>;
    /// Creates or replaces a directory's secrets.
    async fn put(&self, name: &str, secrets: &DirectorySecrets) -> Result<(), SecretsError>;
    /// Deletes a directory's secrets; deleting a missing secret is not an error.
    async fn delete(&self, name: &str) -> Result<(), SecretsError>;
}

/// Caches reads of another secret store for a fixed time, so a warm function does not
/// call Secrets Manager on every invocation. Writes go through and refresh the cache.
pub struct CachingSecretStore<S> {
    inner: S,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Arc<DirectorySecrets>)>>,
}

impl<S: SecretStore> CachingSecretStore<S> {
    /// Caches `inner` for `ttl`.
    pub fn new(inner: S, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads through the cache.
    pub async fn get_cached(&self, name: &str) -> Result<Arc<DirectorySecrets>, SecretsError> {
        if let Some((at, v)) = self.cache.lock().await.get(name) {
            if at.elapsed() < self.ttl {
                return Ok(v.clone());
            }
        }
        let fresh = Arc::new(self.inner.get(name).await?);
        self.cache
            .lock()
            .await
            .insert(name.to_string(), (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Drops a cached entry, e.g. after a signature failed with the cached keys.
    pub async fn invalidate(&self, name: &str) {
        self.cache.lock().await.remove(name);
    }
}

#[async_trait]
impl<S: SecretStore> SecretStore for CachingSecretStore<S> {
    async fn get(&self, name: &str) -> Result<DirectorySecrets, SecretsError> {
        Ok((*self.get_cached(name).await?).clone())
    }

    async fn put(&self, name: &str, secrets: &DirectorySecrets) -> Result<(), SecretsError> {
        self.inner.put(name, secrets).await?;
        self.cache.lock().await.insert(
            name.to_string(),
            (Instant::now(), Arc::new(secrets.clone())),
        );
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        self.inner.delete(name).await?;
        self.invalidate(name).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_never_print_their_values() {
        let json = r#"{"bamboohrApiKey":"k-123","webhookKeys":["wk1","wk2"],"targets":{"app":{"signingSecrets":["whsec_abc"]}}}"#;
        let s = DirectorySecrets::from_json("dir/acme", json).unwrap();
        assert_eq!(s.webhook_keys.len(), 2);
        let debug = format!("{s:?}");
        assert!(!debug.contains("k-123") && !debug.contains("wk1") && !debug.contains("whsec_abc"));
        let back = DirectorySecrets::from_json("x", s.to_json().expose_secret()).unwrap();
        assert_eq!(back.bamboohr_api_key.unwrap().expose_secret(), "k-123");
    }

    #[test]
    fn malformed_secrets_name_the_secret_but_not_the_value() {
        let err =
            DirectorySecrets::from_json("dir/acme", r#"{"bamboohrApiKey": 12345678}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("dir/acme"));
        assert!(!msg.contains("12345678"));
    }
}
