//! Per-directory credentials, cached in memory for minutes, never logged (every value is
//! a `SecretString`, whose Debug prints a placeholder).
//!
//! A directory's credentials are stored in three parts ([`SecretPart`]), each its own
//! secret, so that each function can be allowed to read only what it uses (DESIGN
//! "Tenant isolation"): the BambooHR credential (poller, admin), the incoming webhook
//! keys (webhook, admin) and the target credentials (dispatcher, admin). In memory
//! they are one [`DirectorySecrets`]; a reader of some parts sees the others' fields
//! empty.
//!
//! Pre-split secrets: stacks deployed before the split hold one secret per directory
//! under the directory's own name, in the same JSON shape. Adapters read a part from
//! there while the part's own secret does not exist, and the first write by the control
//! plane splits it (every part written, the old secret deleted), so deployed stacks
//! keep working and migrate as they are configured.

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

/// One separately stored part of a directory's secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretPart {
    /// The BambooHR credential: API key or OAuth tokens. Read by the poller and the
    /// admin API; the poller writes refreshed OAuth tokens back.
    Bamboohr,
    /// Incoming webhook keys and the URL token, with the keys' ages. Read by the webhook
    /// function and the admin API.
    Webhook,
    /// Target credentials, with the signing secrets' ages. Read by the dispatcher and
    /// the admin API.
    Targets,
}

impl SecretPart {
    /// Every part, in storage order.
    pub const ALL: [SecretPart; 3] = [Self::Bamboohr, Self::Webhook, Self::Targets];

    /// The part's name, appended to the directory's secret name (`<name>/<part>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bamboohr => "bamboohr",
            Self::Webhook => "webhook",
            Self::Targets => "targets",
        }
    }

    /// The name of this part's secret for the directory secret `name`.
    pub fn secret_name(self, name: &str) -> String {
        format!("{name}/{}", self.as_str())
    }

    fn bit(self) -> u8 {
        match self {
            Self::Bamboohr => 1,
            Self::Webhook => 2,
            Self::Targets => 4,
        }
    }
}

impl std::fmt::Display for SecretPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

    /// The ids of the keys `part` holds in a key list.
    fn key_ids_of(&self, part: SecretPart) -> std::collections::BTreeSet<String> {
        match part {
            SecretPart::Bamboohr => Default::default(),
            SecretPart::Webhook => self.webhook_keys.iter().map(key_id).collect(),
            SecretPart::Targets => self
                .targets
                .values()
                .flat_map(|t| t.signing_secrets.iter())
                .map(key_id)
                .collect(),
        }
    }

    /// A copy holding only the fields of `parts` (the others empty). Key ages go with
    /// their keys: a webhook key's to [`SecretPart::Webhook`], a signing secret's to
    /// [`SecretPart::Targets`].
    pub fn only(&self, parts: &[SecretPart]) -> DirectorySecrets {
        let mut out = DirectorySecrets::default();
        for part in parts {
            out.take_part(*part, self);
        }
        out
    }

    /// Replaces the fields of `part` with those of `from`.
    pub fn take_part(&mut self, part: SecretPart, from: &DirectorySecrets) {
        let ids = from.key_ids_of(part);
        let replaced = self.key_ids_of(part);
        match part {
            SecretPart::Bamboohr => {
                self.bamboohr_api_key = from.bamboohr_api_key.clone();
                self.oauth = from.oauth.clone();
            }
            SecretPart::Webhook => {
                self.webhook_keys = from.webhook_keys.clone();
                self.webhook_url_token = from.webhook_url_token.clone();
            }
            SecretPart::Targets => {
                self.targets = from.targets.clone();
            }
        }
        self.key_added_at.retain(|id, _| !replaced.contains(id));
        for (id, at) in &from.key_added_at {
            if ids.contains(id) {
                self.key_added_at.insert(id.clone(), *at);
            }
        }
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

/// Where directory secrets live: each [`SecretPart`] its own secret.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Reads `parts` of a directory's secrets; the fields of other parts are empty. A
    /// part whose own secret does not exist is read from the pre-split secret `name`
    /// when there is one, else is empty. [`SecretsError::NotFound`] when none of `parts`
    /// exists in either form.
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError>;

    /// Creates or replaces `parts` of a directory's secrets with those of `secrets`;
    /// other parts are left as they are.
    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError>;

    /// Deletes every part of a directory's secrets (and a pre-split secret); deleting
    /// a missing secret is not an error.
    async fn delete(&self, name: &str) -> Result<(), SecretsError>;

    /// Reads `parts` from where they are kept, past any cache in front of the store
    /// (which then holds the fresh read): for a caller whose cached copy just proved
    /// out of date, e.g. a webhook signed with a key registered after the cache was
    /// filled. A store without a cache reads as [`SecretStore::get_parts`] does.
    async fn get_parts_fresh(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        self.get_parts(name, parts).await
    }

    /// Reads every part (the control plane's view).
    async fn get(&self, name: &str) -> Result<DirectorySecrets, SecretsError> {
        self.get_parts(name, &SecretPart::ALL).await
    }

    /// Creates or replaces every part.
    async fn put(&self, name: &str, secrets: &DirectorySecrets) -> Result<(), SecretsError> {
        self.put_parts(name, &SecretPart::ALL, secrets).await
    }
}

fn parts_key(parts: &[SecretPart]) -> u8 {
    parts.iter().fold(0, |acc, p| acc | p.bit())
}

type CacheKey = (String, u8);

/// Caches reads of another secret store for a fixed time, so a warm function does not
/// call Secrets Manager on every invocation. Writes go through and drop the cached
/// reads of that directory.
pub struct CachingSecretStore<S> {
    inner: S,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, (Instant, Arc<DirectorySecrets>)>>,
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

    /// Reads `parts` through the cache.
    pub async fn get_cached(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<Arc<DirectorySecrets>, SecretsError> {
        let key = (name.to_string(), parts_key(parts));
        if let Some((at, v)) = self.cache.lock().await.get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(v.clone());
            }
        }
        let fresh = Arc::new(self.inner.get_parts(name, parts).await?);
        self.cache
            .lock()
            .await
            .insert(key, (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Drops every cached read of a directory's secrets, e.g. after a signature failed
    /// with the cached keys.
    pub async fn invalidate(&self, name: &str) {
        self.cache.lock().await.retain(|(n, _), _| n != name);
    }
}

#[async_trait]
impl<S: SecretStore> SecretStore for CachingSecretStore<S> {
    async fn get_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        Ok((*self.get_cached(name, parts).await?).clone())
    }

    async fn get_parts_fresh(
        &self,
        name: &str,
        parts: &[SecretPart],
    ) -> Result<DirectorySecrets, SecretsError> {
        let fresh = Arc::new(self.inner.get_parts_fresh(name, parts).await?);
        self.cache.lock().await.insert(
            (name.to_string(), parts_key(parts)),
            (Instant::now(), fresh.clone()),
        );
        Ok((*fresh).clone())
    }

    async fn put_parts(
        &self,
        name: &str,
        parts: &[SecretPart],
        secrets: &DirectorySecrets,
    ) -> Result<(), SecretsError> {
        let result = self.inner.put_parts(name, parts, secrets).await;
        // Even a failed write may have changed some parts.
        self.invalidate(name).await;
        result
    }

    async fn delete(&self, name: &str) -> Result<(), SecretsError> {
        let result = self.inner.delete(name).await;
        self.invalidate(name).await;
        result
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

    fn s(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    fn everything() -> DirectorySecrets {
        let mut all = DirectorySecrets {
            bamboohr_api_key: Some(s("api-key")),
            webhook_keys: vec![s("webhook-key-0123456789")],
            webhook_url_token: Some(s("url-token")),
            ..Default::default()
        };
        all.targets.insert(
            "app".into(),
            TargetSecrets {
                signing_secrets: vec![s("whsec_signing")],
                ..Default::default()
            },
        );
        all.key_added_at
            .insert(key_id(&s("webhook-key-0123456789")), 10);
        all.key_added_at.insert(key_id(&s("whsec_signing")), 20);
        all
    }

    #[test]
    fn each_part_holds_only_its_own_fields_and_the_ages_of_its_own_keys() {
        let all = everything();
        let bamboohr = all.only(&[SecretPart::Bamboohr]);
        assert!(bamboohr.bamboohr_api_key.is_some());
        assert!(bamboohr.webhook_keys.is_empty() && bamboohr.targets.is_empty());
        assert!(bamboohr.key_added_at.is_empty());

        let webhook = all.only(&[SecretPart::Webhook]);
        assert!(webhook.bamboohr_api_key.is_none() && webhook.targets.is_empty());
        assert_eq!(webhook.webhook_keys.len(), 1);
        assert!(webhook.webhook_url_token.is_some());
        assert_eq!(
            webhook.key_added_at.values().copied().collect::<Vec<_>>(),
            [10]
        );

        let targets = all.only(&[SecretPart::Targets]);
        assert!(targets.bamboohr_api_key.is_none() && targets.webhook_keys.is_empty());
        assert_eq!(targets.targets.len(), 1);
        assert_eq!(
            targets.key_added_at.values().copied().collect::<Vec<_>>(),
            [20]
        );

        let mut joined = DirectorySecrets::default();
        for part in SecretPart::ALL {
            joined.take_part(part, &all.only(&[part]));
        }
        assert_eq!(
            joined.to_json().expose_secret(),
            all.to_json().expose_secret()
        );
    }

    #[test]
    fn taking_a_part_replaces_its_fields_and_key_ages_and_keeps_the_rest() {
        let mut all = everything();
        let mut newer = DirectorySecrets {
            webhook_keys: vec![s("another-webhook-key-0000")],
            ..Default::default()
        };
        newer
            .key_added_at
            .insert(key_id(&s("another-webhook-key-0000")), 30);
        all.take_part(SecretPart::Webhook, &newer);
        assert_eq!(all.webhook_keys.len(), 1);
        assert!(all.webhook_url_token.is_none());
        let mut ages: Vec<i64> = all.key_added_at.values().copied().collect();
        ages.sort();
        assert_eq!(ages, [20, 30]);
        assert!(all.bamboohr_api_key.is_some());
    }
}
